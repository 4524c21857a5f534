//! The Python client (`clients/python`) as W5 runs it: a virtual environment beside this
//! executable's target folder with the client installed from the repository, and the tool's
//! worker script (`python/w5_worker.py`). The client is reinstalled on every run so that the
//! figures are always of the checkout's code. Without `python3` (or its `venv` module) W5 is
//! skipped with a reason, never failed.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    error::{Context as _, Error, Result},
    external,
};

const INSTALL_LIMIT: Duration = Duration::from_secs(600);
const WORKER_SCRIPT: &str = include_str!("../python/w5_worker.py");

/// A Python with the client installed, or why there is none.
pub enum PythonClient {
    Ready { python: PathBuf, script: PathBuf },
    Skipped(String),
}

impl PythonClient {
    pub async fn prepare() -> PythonClient {
        match prepare().await {
            Ok(client) => client,
            Err(err) => PythonClient::Skipped(format!("Python client skipped: {err}")),
        }
    }

    /// Starts one worker process of the client against `base`, running `task_type` tasks with
    /// `concurrency` threads; with `starts`, it appends "<task id> <unix time>" to that file as
    /// each handler starts. The process is killed when the handle drops.
    pub fn spawn_worker(
        &self,
        base: &str,
        task_type: &str,
        concurrency: usize,
        starts: Option<&Path>,
    ) -> Result<WorkerProcess> {
        let PythonClient::Ready { python, script } = self else {
            return Err(Error::new("the Python client is not prepared"));
        };
        let mut command = Command::new(python);
        command
            .arg(script)
            .args(["--url", base, "--type", task_type])
            .args(["--concurrency", &concurrency.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(starts) = starts {
            command.arg("--starts").arg(starts);
        }
        let child = command
            .spawn()
            .context("start the Python client's worker")?;
        Ok(WorkerProcess { child })
    }
}

/// A running worker process of the Python client.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// Fails if the process has exited (it only exits when stopped).
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait().context("check the Python worker")? {
            None => Ok(()),
            Some(status) => Err(Error::new(format!(
                "the Python client's worker exited with {status}"
            ))),
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn prepare() -> Result<PythonClient> {
    let Some(system) = external::on_path("python3") else {
        return Ok(PythonClient::Skipped(
            "Python client skipped: no `python3` on PATH (Debian: python3, python3-venv)".into(),
        ));
    };
    let source = client_dir().context("find clients/python in the repository")?;
    let dir = work_dir()?;
    let python = dir.join("venv/bin/python");
    if !python.is_file() {
        let mut command = external::command_in(&system, &dir);
        command.args(["-m", "venv", "venv"]);
        external::run(command, "`python3 -m venv`", INSTALL_LIMIT).await?;
    }
    let mut command = external::command_in(&python, &dir);
    command
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(&source);
    external::run(command, "`pip install clients/python`", INSTALL_LIMIT).await?;
    let script = dir.join("w5_worker.py");
    std::fs::write(&script, WORKER_SCRIPT).context(format_args!("write {}", script.display()))?;
    Ok(PythonClient::Ready { python, script })
}

/// `clients/python` of the repository this tool was built from.
fn client_dir() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("clients/python"))
        .find(|dir| dir.join("pyproject.toml").is_file())
}

/// `python-client` in the target folder this executable was built into.
fn work_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("find this executable's path")?;
    let profile_dir = exe.parent().context("find this executable's folder")?;
    let target = profile_dir.parent().unwrap_or(profile_dir);
    let dir = target.join("python-client");
    std::fs::create_dir_all(&dir).context(format_args!("create {}", dir.display()))?;
    Ok(dir)
}
