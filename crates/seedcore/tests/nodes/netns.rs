//! Network namespaces for the nodes of a test, each joined to the root namespace by two veth
//! links: a *database link*, over which the node reaches PostgreSQL (through a forwarder on
//! its root end), and an *API link*, over which the test reaches the node's HTTP port and the
//! node reaches the test's executor. Bringing the root end of the database link down cuts the
//! node off silently: its packets are dropped, nothing answers, nothing resets.
//!
//! Invariants: every name carries the test process's pid (namespaces `scn-<pid>-<i>`, root
//! link ends `scn<pid>d<i>` and `scn<pid>a<i>`), so a run removes only its own and those left
//! by runs whose process is gone; a namespace is removed when its [`Netns`] is dropped, panic
//! or not, and removing it removes its links. Addresses come from 10.231.0.0/16, a /27 per run
//! (a /30 per link) not in use on this machine. Creating namespaces needs root; without it the
//! test fails saying so rather than passing without having run.

use std::{net::Ipv4Addr, process::Command};

const PREFIX: &str = "scn-";

/// One node's namespace and its two links.
pub struct Netns {
    pub name: String,
    /// The root end of the database link.
    db_link: String,
    /// The root end of the database link, where the node finds its database.
    pub db_root: Ipv4Addr,
    /// The root end of the API link, where the node finds the executor.
    pub api_root: Ipv4Addr,
    /// The namespace's end of the API link, where the node listens.
    pub api_node: Ipv4Addr,
}

/// Fails the test unless it runs as root, which `ip netns` needs.
pub fn require_root() {
    let uid = Command::new("id").arg("-u").output();
    let root = uid.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    assert!(
        root,
        "this test runs seedcore nodes in network namespaces of its own and must run as root \
         (ip netns add needs it), as scripts/test.sh on a clean Debian machine does"
    );
}

/// Removes the namespaces left by runs whose process is gone, and any of this process's pid
/// (an earlier run that had it and crashed).
pub fn remove_stale() {
    let listed = ip(&["netns", "list"]);
    for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()) else {
            continue;
        };
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive || pid == std::process::id().to_string() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The first of this run's addresses: a /27 of 10.231.0.0/16 no interface here uses.
pub fn free_block() -> u32 {
    let used = ip(&["-4", "-o", "addr", "show"]);
    let base = u32::from(Ipv4Addr::new(10, 231, 0, 0));
    let first = std::process::id() % 2048;
    (0..2048)
        .map(|n| base + ((first + n) % 2048) * 32)
        .find(|block| (0..32).all(|i| !used.contains(&format!(" {}/", Ipv4Addr::from(block + i)))))
        .expect("a free /27 in 10.231.0.0/16")
}

impl Netns {
    /// Namespace `index` of this run, its links taking the `index`th 8 addresses of `block`.
    pub fn create(block: u32, index: u32) -> Netns {
        let pid = std::process::id();
        let at = |offset: u32| Ipv4Addr::from(block + index * 8 + offset);
        let netns = Netns {
            name: format!("{PREFIX}{pid}-{index}"),
            db_link: format!("scn{pid}d{index}"),
            db_root: at(1),
            api_root: at(5),
            api_node: at(6),
        };
        run(&["netns", "add", &netns.name]);
        // From here on, dropping `netns` removes whatever was made.
        netns.link(&netns.db_link, "db", at(1), at(2));
        netns.link(&format!("scn{pid}a{index}"), "api", at(5), at(6));
        run(&["-n", &netns.name, "link", "set", "lo", "up"]);
        netns
    }

    /// A veth pair: `root` here with `root_address`, `inside` in the namespace with
    /// `inside_address`, both up, on one /30.
    fn link(&self, root: &str, inside: &str, root_address: Ipv4Addr, inside_address: Ipv4Addr) {
        let ns = self.name.as_str();
        run(&[
            "link", "add", root, "type", "veth", "peer", "name", inside, "netns", ns,
        ]);
        run(&["addr", "add", &format!("{root_address}/30"), "dev", root]);
        run(&["link", "set", root, "up"]);
        let inside_cidr = format!("{inside_address}/30");
        run(&["-n", ns, "addr", "add", &inside_cidr, "dev", inside]);
        run(&["-n", ns, "link", "set", inside, "up"]);
    }

    /// Cuts the node off from its database: packets on the link are dropped from now on.
    pub fn cut(&self) {
        run(&["link", "set", &self.db_link, "down"]);
    }

    /// Gives the node its database back.
    pub fn reconnect(&self) {
        run(&["link", "set", &self.db_link, "up"]);
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// `ip ARGS`, which must succeed; its stdout.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2), which this test needs");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(args: &[&str]) {
    ip(args);
}
