"""Network-filesystem detection (WAL is unsafe on NFS/SMB/sshfs) from a /proc/mounts text."""

from __future__ import annotations

from gpudash.store import Store
from gpudash.store.paths import fs_type_for, is_network_fs

MOUNTS = """\
overlay / overlay rw,relatime,lowerdir=/a,upperdir=/b,workdir=/c 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
nas01:/export/home /home nfs4 rw,relatime,vers=4.2,rsize=1048576 0 0
/dev/nvme0n1p1 /home/alice/local ext4 rw,relatime 0 0
//fs/share /mnt/smb cifs rw,relatime,vers=3.0 0 0
alice@box:/srv /mnt/my\\040box fuse.sshfs rw,nosuid,nodev 0 0
nas02:/scratch /scratch nfs rw,vers=3 0 0
tmpfs /scratch tmpfs rw 0 0
"""


def test_nfs_home_is_network():
    assert fs_type_for("/home/alice/.local/state/gpudash", MOUNTS) == "nfs4"
    assert is_network_fs("/home/alice/.local/state/gpudash", MOUNTS)


def test_longest_mount_point_wins():
    assert fs_type_for("/home/alice/local/state", MOUNTS) == "ext4"
    assert not is_network_fs("/home/alice/local/state", MOUNTS)
    # a prefix that is not a path component does not match
    assert fs_type_for("/homework/x", MOUNTS) == "overlay"


def test_cifs_sshfs_with_escaped_space_and_nfs3():
    assert is_network_fs("/mnt/smb/u", MOUNTS)
    assert fs_type_for("/mnt/my box/state", MOUNTS) == "fuse.sshfs"
    assert is_network_fs("/mnt/my box/state", MOUNTS)


def test_later_overmount_wins():
    assert fs_type_for("/scratch/x", MOUNTS) == "tmpfs"


def test_local_root_and_garbage():
    assert not is_network_fs("/var/lib/x", MOUNTS)
    assert fs_type_for("/x", "") is None
    assert fs_type_for("/x", "garbage\n\n a") is None
    assert not is_network_fs("/x", "\x00\xff junk")


def test_store_uses_the_rollback_journal_on_nfs(tmp_path):
    real = str(tmp_path.resolve())
    fake = f"/dev/sda1 / ext4 rw 0 0\nnas:/x {real} nfs4 rw 0 0\n"
    st = Store.open(tmp_path / "h.sqlite3", mounts_text=fake)
    assert st.journal_mode == "delete"
    st.close()
    st = Store.open(tmp_path / "h2.sqlite3", mounts_text="/dev/sda1 / ext4 rw 0 0\n")
    assert st.journal_mode == "wal"
    st.close()


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(deadline=None, max_examples=200)
@given(st.text(), st.text(min_size=1))
def test_detection_never_raises(text, path):
    fs_type_for("/" + path.replace("\x00", ""), text)
    is_network_fs("/nonexistent/" + path.replace("\x00", ""), text)
