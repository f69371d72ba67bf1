//! Real servers for the tests, from Debian's packages (`.ci/run` installs
//! them): started on a free loopback port with a temporary data directory,
//! stopped (and the directory removed) when dropped. A missing program fails
//! the test with how to get it: a test that skipped itself could never fail.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Service {
    /// SIGTERM first, so that PostgreSQL takes its backends down with it,
    /// then SIGKILL if it is still there after five seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn program(name: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    // PostgreSQL's server programs live under its version's own folder.
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        dirs.extend(versions.flatten().map(|v| v.path().join("bin")));
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: `apt-get install {package}` (.ci/run installs it)")
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fault-server-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wait_for(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `redis-server` on loopback, persisting nothing.
pub fn redis() -> Service {
    let dir = scratch("redis");
    let port = free_port();
    let mut child = Command::new(program("redis-server", "redis-server"))
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for(addr, &mut child, "redis-server");
    Service { child, addr, dir }
}

/// A PostgreSQL server on loopback, user `test` trusted (database `postgres`).
/// PostgreSQL will not run as root: as root, it runs as the `postgres`
/// user the package made (through util-linux's setpriv).
pub fn postgres() -> Service {
    let dir = scratch("postgres");
    let data = dir.join("data");
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let command = |program: &Path| {
        if as_root {
            // setpriv execs the program itself (no forked parent left
            // behind), so killing the child kills the server.
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    if as_root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "chown the data directory to postgres");
    }
    let initdb = command(&program("initdb", "postgresql"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "test", "--no-sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        initdb.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = free_port();
    let mut child = command(&program("postgres", "postgresql"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-k")
        .arg(&dir)
        .args(["-c", "fsync=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for(addr, &mut child, "postgres");
    // Listening is not ready: it refuses connections while it starts up.
    let ready = program("pg_isready", "postgresql");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new(&ready)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "postgres never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    Service { child, addr, dir }
}
