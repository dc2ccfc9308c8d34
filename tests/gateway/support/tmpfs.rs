//! A small tmpfs, for tests of what the gateway does when its disk is full.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped. Mounting needs
/// root (CI runs as root).
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap().keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount(8)");
        assert!(
            status.success(),
            "this test mounts a small tmpfs and needs root (CI runs as root)"
        );
        Tmpfs(dir)
    }

    /// Writes a file until the filesystem is full.
    pub fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).and_then(|_| file.sync_data()).is_ok() {}
        let mut byte = 0;
        while file.write_all(&[0]).is_ok() && byte < 1 << 20 {
            byte += 1;
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
