//! A small disk of the test's own: a tmpfs mounted on a fresh folder, which the test fills
//! with a ballast file and frees again. Mounting needs root (or passwordless sudo); without
//! either the test fails saying so, rather than passing without having run.
//!
//! Invariant: dropping the [`SmallDisk`] unmounts it (lazily, should a process still hold a
//! file on it) and removes the folder.

use std::{
    io::{ErrorKind, Write},
    path::PathBuf,
    process::Command,
};

use uuid::Uuid;

const BALLAST: &str = "ballast";

pub struct SmallDisk {
    pub path: PathBuf,
    sudo: bool,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it, e.g. "16m").
    pub fn mount(size: &str) -> SmallDisk {
        let path = PathBuf::from(format!("/tmp/seedcore-disk-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create the mount point");
        let sudo = !is_root();
        let disk = SmallDisk { path, sudo };
        let output = disk
            .as_root("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0777"),
                "seedcore-test",
            ])
            .arg(&disk.path)
            .output();
        match output {
            Ok(out) if out.status.success() => disk,
            Ok(out) => panic!(
                "this test fills a disk of its own and needs to mount a tmpfs, which failed \
                 (run it as root, as scripts/test.sh on a clean Debian machine does, or with \
                 passwordless sudo): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => panic!("cannot run mount (needed to make a small disk): {err}"),
        }
    }

    /// Writes a ballast file until the disk has no room left.
    pub fn fill(&self) {
        let mut ballast = std::fs::File::create(self.path.join(BALLAST)).expect("create ballast");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match ballast.write_all(&chunk).and_then(|()| ballast.sync_all()) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::StorageFull => return,
                Err(err) => panic!("filling the disk failed with {err}, not with a full disk"),
            }
        }
    }

    /// Removes the ballast: the space is back.
    pub fn free(&self) {
        std::fs::remove_file(self.path.join(BALLAST)).expect("remove the ballast");
    }

    fn as_root(&self, program: &str) -> Command {
        if self.sudo {
            let mut command = Command::new("sudo");
            command.args(["-n", program]);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.as_root("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
