/* A stand-in libnvidia-ml.so.1 for boxes without a GPU: it answers the NVML calls gpudash's
 * sampler (gpudash/probes/nvml_stream.py) makes, with the C ABI of nvml.h, from a text file.
 * The tests compile it (cc -shared -fPIC) and put its folder on LD_LIBRARY_PATH; the agent's
 * ctypes structures and calls then meet a real shared library. The real library was checked
 * against nvidia-smi on an H100 (benchmarks/nvsmi_cost.py).
 *
 * GD_FAKE_NVML=FILE, read at nvmlInit_v2, one directive per line:
 *   init_rc N                   nvmlInit_v2 returns N
 *   gpu V1|V2|...               one GPU: its values in CORE_FIELDS order, as nvidia-smi prints
 *                               them (nounits), split by '|' (a name may hold commas); [N/A] = NOT_SUPPORTED (3), [Insufficient
 *                               Permissions] = NO_PERMISSION (4)
 *   fail FUNCTION AFTER RC      FUNCTION returns RC once it has answered AFTER times
 * GD_FAKE_NVML_CALLS=FILE: every call appends its function's name (to count them).
 * GD_FAKE_NVML_APPS=FILE, read at every compute-apps call (so a test can change it under a
 * running sampler), one process per line: GPU_INDEX PID USED_MIB|-1 NAME (the rest of the line).
 * Without it the compute-apps call answers NOT_SUPPORTED.
 * GD_FAKE_NVML_HEALTH=FILE, read at every call too: GPU_INDEX ECC_TOTAL|-1 EVENT_MASK_HEX per line
 * (-1: ECC not supported). Without it both calls answer NOT_SUPPORTED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *nvmlDevice_t;
enum { F_INDEX, F_UUID, F_NAME, F_BUS, F_DRIVER, F_PSTATE, F_TEMP, F_MEMTEMP, F_UTIL, F_MEMUTIL,
       F_MEMTOTAL, F_MEMUSED, F_MEMFREE, F_POWER, F_LIMIT, F_SM, F_MEM, F_MAXSM, F_FAN, F_MIG,
       F_MODE, NFIELDS };
#define MAXGPU 8
static char vals[MAXGPU][NFIELDS][100];
static int ngpu, init_rc;
static struct { char fn[64]; int after, rc, seen; } fails[8];
static int nfails;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { char busIdLegacy[16]; unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
                 char busId[32]; } nvmlPciInfo_t;
typedef union { double dVal; unsigned int uiVal; unsigned long ulVal; unsigned long long ullVal;
                long long sllVal; int siVal; unsigned short usVal; } nvmlValue_t;
typedef struct { unsigned int pid; unsigned long long usedGpuMemory;
                 unsigned int gpuInstanceId, computeInstanceId; } nvmlProcessInfo_t;
typedef struct { unsigned int fieldId, scopeId; long long timestamp, latencyUsec;
                 unsigned int valueType, nvmlReturn; nvmlValue_t value; } nvmlFieldValue_t;

static void trim(char *s) {
  char *e = s + strlen(s);
  while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
  char *b = s; while (*b == ' ') b++;
  memmove(s, b, strlen(b) + 1);
}

static int gate(const char *fn) {  /* log the call; an injected failure's code, or 0 */
  const char *log = getenv("GD_FAKE_NVML_CALLS");
  if (log) { FILE *f = fopen(log, "a"); if (f) { fprintf(f, "%s\n", fn); fclose(f); } }
  for (int i = 0; i < nfails; i++)
    if (!strcmp(fails[i].fn, fn) && fails[i].seen++ >= fails[i].after) return fails[i].rc;
  return 0;
}

static int value(unsigned int i, int field, double *out) {  /* 0, or NVML's code for a placeholder */
  if (i >= (unsigned)ngpu) return 2;
  const char *v = vals[i][field];
  if (!strcmp(v, "[N/A]") || !strcmp(v, "[Not Supported]")) return 3;
  if (!strcmp(v, "[Insufficient Permissions]")) return 4;
  *out = atof(v);
  return 0;
}

#define DEV(h) ((unsigned int)(unsigned long)(h) - 1)

int nvmlInit_v2(void) {
  const char *path = getenv("GD_FAKE_NVML");
  FILE *f = path ? fopen(path, "r") : NULL;
  char line[2048];
  if (!f) return 1;  /* NVML_ERROR_UNINITIALIZED: no description */
  ngpu = 0; nfails = 0; init_rc = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "init_rc ", 8)) init_rc = atoi(line + 8);
    else if (!strncmp(line, "fail ", 5) && nfails < 8) {
      sscanf(line + 5, "%63s %d %d", fails[nfails].fn, &fails[nfails].after, &fails[nfails].rc);
      fails[nfails++].seen = 0;
    } else if (!strncmp(line, "gpu ", 4) && ngpu < MAXGPU) {
      int k = 0; char *p = line + 4, *c;
      while (k < NFIELDS && p) {
        if ((c = strchr(p, '|'))) *c = 0;
        snprintf(vals[ngpu][k], sizeof vals[ngpu][k], "%.99s", p);
        trim(vals[ngpu][k++]);
        p = c ? c + 1 : NULL;
      }
      ngpu++;
    }
  }
  fclose(f);
  return init_rc;
}
int nvmlInit(void) { return nvmlInit_v2(); }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned int *n) { int r = gate("nvmlDeviceGetCount_v2"); if (!r) *n = ngpu; return r; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *h) {
  int r = gate("nvmlDeviceGetHandleByIndex_v2"); if (r) return r;
  if (i >= (unsigned)ngpu) return 2;
  *h = (nvmlDevice_t)(unsigned long)(i + 1); return 0;
}
static int text(const char *fn, nvmlDevice_t h, int field, char *buf, unsigned int len) {
  int r = gate(fn); if (r) return r;
  if (DEV(h) >= (unsigned)ngpu) return 2;
  if (strlen(vals[DEV(h)][field]) + 1 > len) return 7;  /* INSUFFICIENT_SIZE */
  strcpy(buf, vals[DEV(h)][field]); return 0;
}
int nvmlDeviceGetUUID(nvmlDevice_t h, char *b, unsigned int n) { return text("nvmlDeviceGetUUID", h, F_UUID, b, n); }
int nvmlDeviceGetName(nvmlDevice_t h, char *b, unsigned int n) { return text("nvmlDeviceGetName", h, F_NAME, b, n); }
int nvmlSystemGetDriverVersion(char *b, unsigned int n) {
  int r = gate("nvmlSystemGetDriverVersion"); if (r) return r;
  snprintf(b, n, "%s", ngpu ? vals[0][F_DRIVER] : "0"); return 0;
}
int nvmlDeviceGetPciInfo_v3(nvmlDevice_t h, nvmlPciInfo_t *p) {
  int r = gate("nvmlDeviceGetPciInfo_v3"); if (r) return r;
  memset(p, 0, sizeof *p); snprintf(p->busId, sizeof p->busId, "%s", vals[DEV(h)][F_BUS]); return 0;
}
static int uint_field(const char *fn, nvmlDevice_t h, int field, double scale, unsigned int *out) {
  double v; int r = gate(fn); if (r) return r;
  r = value(DEV(h), field, &v); if (!r) *out = (unsigned int)(v * scale + 0.5); return r;
}
int nvmlDeviceGetTemperature(nvmlDevice_t h, int sensor, unsigned int *t) {
  return sensor ? 2 : uint_field("nvmlDeviceGetTemperature", h, F_TEMP, 1, t);
}
int nvmlDeviceGetFieldValues(nvmlDevice_t h, int n, nvmlFieldValue_t *fv) {
  int r = gate("nvmlDeviceGetFieldValues"); if (r) return r;
  for (int k = 0; k < n; k++) {
    double v;
    if (fv[k].fieldId != 82) { fv[k].nvmlReturn = 3; continue; }  /* NVML_FI_DEV_MEMORY_TEMP */
    fv[k].nvmlReturn = value(DEV(h), F_MEMTEMP, &v);
    fv[k].valueType = 1; fv[k].value.uiVal = (unsigned int)v;
  }
  return 0;
}
int nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t *u) {
  double a, b; int r = gate("nvmlDeviceGetUtilizationRates"); if (r) return r;
  if ((r = value(DEV(h), F_UTIL, &a)) || (r = value(DEV(h), F_MEMUTIL, &b))) return r;
  u->gpu = (unsigned int)a; u->memory = (unsigned int)b; return 0;
}
static int mem(nvmlDevice_t h, unsigned long long *t, unsigned long long *u, unsigned long long *f) {
  double a, b, c; int r;
  if ((r = value(DEV(h), F_MEMTOTAL, &a)) || (r = value(DEV(h), F_MEMUSED, &b)) || (r = value(DEV(h), F_MEMFREE, &c))) return r;
  *t = (unsigned long long)a << 20; *u = (unsigned long long)b << 20; *f = (unsigned long long)c << 20;
  return 0;
}
int nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t h, nvmlMemory_v2_t *m) {
  int r = gate("nvmlDeviceGetMemoryInfo_v2"); if (r) return r;
  if (m->version != 0x02000028) return 25;  /* ARGUMENT_VERSION_MISMATCH */
  r = mem(h, &m->total, &m->used, &m->free); m->reserved = m->total - m->used - m->free; return r;
}
int nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *m) {
  int r = gate("nvmlDeviceGetMemoryInfo"); if (r) return r;
  return mem(h, &m->total, &m->used, &m->free);
}
int nvmlDeviceGetPowerUsage(nvmlDevice_t h, unsigned int *mw) { return uint_field("nvmlDeviceGetPowerUsage", h, F_POWER, 1000, mw); }
int nvmlDeviceGetPowerManagementLimit(nvmlDevice_t h, unsigned int *mw) { return uint_field("nvmlDeviceGetPowerManagementLimit", h, F_LIMIT, 1000, mw); }
int nvmlDeviceGetClockInfo(nvmlDevice_t h, int type, unsigned int *c) {
  return uint_field("nvmlDeviceGetClockInfo", h, type == 1 ? F_SM : type == 2 ? F_MEM : F_MAXSM, 1, c);
}
int nvmlDeviceGetMaxClockInfo(nvmlDevice_t h, int type, unsigned int *c) {
  return type == 1 ? uint_field("nvmlDeviceGetMaxClockInfo", h, F_MAXSM, 1, c) : 3;
}
int nvmlDeviceGetFanSpeed(nvmlDevice_t h, unsigned int *s) { return uint_field("nvmlDeviceGetFanSpeed", h, F_FAN, 1, s); }
int nvmlDeviceGetPerformanceState(nvmlDevice_t h, unsigned int *p) {
  int r = gate("nvmlDeviceGetPerformanceState"); if (r) return r;
  const char *v = vals[DEV(h)][F_PSTATE];
  if (v[0] != 'P') return 3;
  *p = atoi(v + 1); return 0;
}
int nvmlDeviceGetMigMode(nvmlDevice_t h, unsigned int *cur, unsigned int *pend) {
  int r = gate("nvmlDeviceGetMigMode"); if (r) return r;
  const char *v = vals[DEV(h)][F_MIG];
  if (!strcmp(v, "Enabled")) *cur = *pend = 1; else if (!strcmp(v, "Disabled")) *cur = *pend = 0; else return 3;
  return 0;
}
int nvmlDeviceGetComputeMode(nvmlDevice_t h, unsigned int *m) {
  static const char *names[] = {"Default", "Exclusive_Thread", "Prohibited", "Exclusive_Process"};
  int r = gate("nvmlDeviceGetComputeMode"); if (r) return r;
  for (unsigned int k = 0; k < 4; k++) if (!strcmp(vals[DEV(h)][F_MODE], names[k])) { *m = k; return 0; }
  return 3;
}

static int app_lines(unsigned int gpu, unsigned int *pids, long long *mib, char names[][256], int cap) {
  const char *path = getenv("GD_FAKE_NVML_APPS");
  FILE *f = path ? fopen(path, "r") : NULL;
  char line[512]; int n = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned int g, pid; long long m; int used = 0;
    if (sscanf(line, "%u %u %lld %n", &g, &pid, &m, &used) < 3 || g != gpu) continue;
    if (n < cap) { pids[n] = pid; mib[n] = m; snprintf(names[n], 256, "%s", line + used); trim(names[n]); }
    n++;
  }
  fclose(f);
  return n;
}
int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t h, unsigned int *count, nvmlProcessInfo_t *infos) {
  unsigned int pids[64]; long long mib[64]; static char names[64][256];
  int r = gate("nvmlDeviceGetComputeRunningProcesses_v3"); if (r) return r;
  int n = app_lines(DEV(h), pids, mib, names, 64);
  if (n < 0) return 3;
  if ((unsigned)n > *count) { *count = n; return 7; }  /* INSUFFICIENT_SIZE */
  for (int k = 0; k < n && k < 64; k++) {
    infos[k].pid = pids[k]; infos[k].gpuInstanceId = infos[k].computeInstanceId = 0xFFFFFFFF;
    infos[k].usedGpuMemory = mib[k] < 0 ? 0xFFFFFFFFFFFFFFFFULL : (unsigned long long)mib[k] << 20;
  }
  *count = n; return 0;
}
int nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int len) {
  unsigned int pids[64]; long long mib[64]; static char names[64][256];
  int r = gate("nvmlSystemGetProcessName"); if (r) return r;
  for (unsigned int g = 0; g < MAXGPU; g++) {
    int n = app_lines(g, pids, mib, names, 64);
    for (int k = 0; k < n && k < 64; k++)
      if (pids[k] == pid) { snprintf(name, len, "%s", names[k]); return 0; }
  }
  return 6;  /* NOT_FOUND */
}

static int health_line(unsigned int gpu, long long *ecc, unsigned long long *mask) {
  const char *path = getenv("GD_FAKE_NVML_HEALTH");
  FILE *f = path ? fopen(path, "r") : NULL;
  char line[256]; int found = 0;
  if (!f) return 3;
  while (fgets(line, sizeof line, f)) {
    unsigned int g; long long e; unsigned long long m;
    if (sscanf(line, "%u %lld %llx", &g, &e, &m) == 3 && g == gpu) { *ecc = e; *mask = m; found = 1; }
  }
  fclose(f);
  return found ? 0 : 3;
}
int nvmlDeviceGetTotalEccErrors(nvmlDevice_t h, int errorType, int counterType, unsigned long long *count) {
  long long e; unsigned long long m;
  int r = gate("nvmlDeviceGetTotalEccErrors"); if (r) return r;
  if (errorType != 1 || counterType != 0) return 2;  /* gpudash asks uncorrected, volatile */
  if ((r = health_line(DEV(h), &e, &m))) return r;
  if (e < 0) return 3;
  *count = (unsigned long long)e; return 0;
}
int nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t h, unsigned long long *mask) {
  long long e; int r = gate("nvmlDeviceGetCurrentClocksEventReasons"); if (r) return r;
  if ((r = health_line(DEV(h), &e, mask))) return r;
  return 0;
}
