//! The remote executor every node runs its tasks on, served by the test process: it records
//! each call's start and end, per task and per node (told apart by the caller's address), so
//! that what ran where and when is seen where the work happens.
//!
//! It speaks just enough HTTP/1.1 by hand to watch the connection while a task "runs"
//! (sleeps `params.seconds`, or `params.slow_seconds` on the node `params.slow_on`): a caller that drops the call closes the connection, and the call
//! is recorded as ended at that moment, unanswered. Answers are `{success: true}` with the
//! task's id; connections are kept alive, as the nodes' HTTP client expects.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use uuid::Uuid;

/// One call of the executor.
#[derive(Clone, Debug)]
pub struct Call {
    pub task: Uuid,
    /// The caller's address: which node.
    pub node: IpAddr,
    pub start: Instant,
    /// When it was answered or dropped; None while running.
    pub end: Option<Instant>,
    /// Answered (rather than dropped by the caller).
    pub answered: bool,
}

pub struct Executor {
    pub port: u16,
    calls: Arc<Mutex<Vec<Call>>>,
    accept: JoinHandle<()>,
}

impl Executor {
    /// Listens on every address of the root namespace, on a port of the kernel's choice.
    pub async fn start() -> Executor {
        let listener = TcpListener::bind("0.0.0.0:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let record = calls.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tokio::spawn(serve(stream, peer, record.clone()));
            }
        });
        Executor {
            port,
            calls,
            accept,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves the calls of one connection, one after another.
async fn serve(mut stream: TcpStream, peer: SocketAddr, calls: Arc<Mutex<Vec<Call>>>) {
    let mut buffer = Vec::new();
    while let Some(body) = request(&mut stream, &mut buffer).await {
        let task: Uuid = body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("a task id in the call");
        let seconds = duration(&body["params"], peer.ip());
        let index = {
            let mut calls = calls.lock().expect("calls");
            calls.push(Call {
                task,
                node: peer.ip(),
                start: Instant::now(),
                end: None,
                answered: false,
            });
            calls.len() - 1
        };
        let end = |answered: bool| {
            let mut calls = calls.lock().expect("calls");
            calls[index].end = Some(Instant::now());
            calls[index].answered = answered;
        };
        let mut probe = [0u8; 1];
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
            // A caller waiting for its answer sends nothing: a read returns only at the close.
            _ = stream.read(&mut probe) => {
                end(false);
                return;
            }
        }
        let answer = json!({"success": true, "result": {"task": task}, "error": null}).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let written = stream.write_all(response.as_bytes()).await.is_ok();
        end(written);
        if !written {
            return;
        }
    }
}

/// How long a call "runs": `seconds`, or `slow_seconds` when made by the node `slow_on` names.
fn duration(params: &Value, caller: IpAddr) -> f64 {
    let slow_here = params["slow_on"].as_str() == Some(caller.to_string().as_str());
    let key = if slow_here { "slow_seconds" } else { "seconds" };
    params[key].as_f64().unwrap_or(0.0)
}

/// Reads one request from `stream` (left-overs kept in `buffer`); its JSON body, or None once
/// the connection closes.
async fn request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Value> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await?;
    }
    let body = serde_json::from_slice(&buffer[head_end..head_end + length]).expect("a JSON body");
    buffer.drain(..head_end + length);
    Some(body)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
