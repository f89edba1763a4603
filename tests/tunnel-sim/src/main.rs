//! `tunnel-sim`: hosts the real tunnel.kext in the simulated kernel and carries real traffic.
//!
//! ```text
//! tunnel-sim host --ns-a A --ns-b B [--ns-host R] [--fuse DIR] [--relay inproc|none]
//!                 [--strict] [--stats FILE] [--ready FILE] [--max-seconds N]
//! tunnel-sim relay --dev PATH --bind IP:PORT --peer IP:PORT [--max-seconds N]
//! tunnel-sim plain --ns-a A --ns-b B [--ns-host R] [--ready FILE] [--max-seconds N]
//! ```
//!
//! `host` joins namespace R (if given) before anything else, boots the sim (fast, or strict
//! with `--strict`), loads the driver, creates Linux tun `tun0` in namespace A (paired with
//! the sim's unit 0, 10.66.0.1 ↔ 10.66.0.2, fd66::1 ↔ fd66::2) and `tun1` in B (unit 1, the
//! mirror image), bridges them, optionally serves `/dev/tunN` as FUSE files under DIR and/or
//! runs the in-process relay, writes its counters to FILE every 200 ms, and on SIGTERM/SIGINT
//! stops everything, unloads the driver (leak-checked) and prints the final counters.
//!
//! `relay` is the VTun-like relay as its own process over a device file (the FUSE file).
//!
//! `plain` is the benchmark baseline (scripts/bench.sh, L2): the same two Linux tun devices,
//! relayed by plain threads with one cross-thread queue hop per direction and no driver.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tunnel_sim::bridge::{self, Bridge, Side};
use tunnel_sim::linux_tun::{self, LinuxTun};
use tunnel_sim::{fusedev, relay};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1).cloned())
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn required(&self, name: &str) -> Result<String, String> {
        self.value(name).ok_or_else(|| format!("missing {name}"))
    }
    /// `--max-seconds N`: how long the process may run at most (default 600 s).
    fn max_seconds(&self) -> Duration {
        Duration::from_secs(
            self.value("--max-seconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(600),
        )
    }
}

fn ns_path(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/run/netns/{name}")
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates and configures the Linux tun of `unit` in namespace `ns`.
fn linux_side(ns: &str, unit: usize) -> Result<Side, String> {
    let name = format!("tun{unit}");
    let tun =
        LinuxTun::create_in(&ns_path(ns), &name).map_err(|e| format!("tun {name} in {ns}: {e}"))?;
    let a = bridge::addrs(unit);
    let v4 = std::net::Ipv4Addr::from(a.v4).to_string();
    let p4 = std::net::Ipv4Addr::from(a.peer4).to_string();
    let (v6, p6) = (bridge::v6_text(&a.v6), bridge::v6_text(&a.peer6));
    // No link-local address and no DAD: only the traffic the tests send crosses the driver
    // (MLD reports may still go out; the counters are compared, not assumed empty).
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    ip(&["-n", ns, "link", "set", &name, "addrgenmode", "none"])?;
    // Up first: an IPv6 peer route is only installed for an address added on an up link.
    ip(&["-n", ns, "link", "set", &name, "up"])?;
    ip(&["-n", ns, "addr", "add", &v4, "peer", &p4, "dev", &name])?;
    ip(&[
        "-n", ns, "-6", "addr", "add", &v6, "peer", &p6, "dev", &name, "nodad",
    ])?;
    Ok(Side {
        unit,
        tun,
        counters: Default::default(),
    })
}

fn write_atomic(path: &PathBuf, text: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn host(args: &Args) -> Result<(), String> {
    if let Some(ns) = args.value("--ns-host") {
        // Before any thread exists: every thread started later inherits this namespace.
        linux_tun::enter_netns(&ns_path(&ns)).map_err(|e| format!("join {ns}: {e}"))?;
    }
    let ns_a = args.required("--ns-a")?;
    let ns_b = args.required("--ns-b")?;
    let stats = args.value("--stats").map(PathBuf::from);
    let max = args.max_seconds();
    install_signal_handlers();
    tunnel_sim::boot_and_load(args.flag("--strict"));
    let sides = vec![linux_side(&ns_a, 0)?, linux_side(&ns_b, 1)?];
    let bridge = Bridge::start(sides);
    let configure: fusedev::OnOpen = Arc::new(bridge::configure_sim_interface);
    let fuse = match args.value("--fuse") {
        Some(dir) => {
            fusedev::available()?;
            Some(
                fusedev::mount(std::path::Path::new(&dir), 2, Arc::clone(&configure))
                    .map_err(|e| format!("mount FUSE at {dir}: {e}"))?,
            )
        }
        None => None,
    };
    let inproc = match args.value("--relay").as_deref() {
        Some("inproc") => Some(
            relay::InProcRelay::start(&*configure, relay::Transport::Udp)
                .map_err(|e| format!("relay: {e}"))?,
        ),
        Some("none") | None => None,
        Some(other) => return Err(format!("unknown relay {other}")),
    };
    if let Some(ready) = args.value("--ready") {
        write_atomic(&PathBuf::from(ready), "ready\n");
    }
    eprintln!("tunnel-sim: ready (pid {})", std::process::id());
    let started = Instant::now();
    while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(path) = &stats {
            write_atomic(path, &bridge.stats_text());
        }
    }
    if let Some(r) = inproc {
        for (u, e) in r.endpoints.iter().enumerate() {
            let c = &e.counters;
            eprintln!(
                "tunnel-sim: in-process relay unit{u}: dev->udp {} udp->dev {} write errors {}",
                c.dev_to_udp.load(Ordering::Relaxed),
                c.udp_to_dev.load(Ordering::Relaxed),
                c.write_errors.load(Ordering::Relaxed)
            );
        }
        r.stop();
    }
    if let Some((session, open)) = fuse {
        // Clients that just exited: their RELEASE may still be on its way (bounded wait).
        for _ in 0..50 {
            if open.count() == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(session); // unmounts
        open.close_all();
    }
    let text = bridge.stats_text();
    if let Some(path) = &stats {
        write_atomic(path, &text);
    }
    print!("{text}");
    bridge.stop();
    // Leave nothing open, then unload: the leak check must come out clean.
    match xnu_sim::kextunload() {
        Ok(()) if xnu_sim::leaks().is_clean() => {
            println!("unload=clean");
            Ok(())
        }
        Ok(()) => Err(format!("unload: leaks {:?}", xnu_sim::leaks())),
        Err(e) => Err(format!("unload: {e:?}")),
    }
}

/// The L2 baseline: tun0 (A) and tun1 (B) joined by a reader thread, a bounded queue and a
/// writer thread per direction: the shape of the driver's path minus the driver.
fn plain(args: &Args) -> Result<(), String> {
    if let Some(ns) = args.value("--ns-host") {
        linux_tun::enter_netns(&ns_path(&ns)).map_err(|e| format!("join {ns}: {e}"))?;
    }
    let max = args.max_seconds();
    install_signal_handlers();
    let a = Arc::new(linux_side(&args.required("--ns-a")?, 0)?.tun);
    let b = Arc::new(linux_side(&args.required("--ns-b")?, 1)?.tun);
    let mut threads = Vec::new();
    for (from, to) in [(Arc::clone(&a), Arc::clone(&b)), (b, a)] {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1024);
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !STOP.load(Ordering::SeqCst) {
                if let Ok(Some(n)) = from.read_timeout(&mut buf, Duration::from_millis(100)) {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }));
        threads.push(std::thread::spawn(move || {
            while let Ok(packet) = rx.recv() {
                let _ = to.write(&packet);
            }
        }));
    }
    if let Some(ready) = args.value("--ready") {
        write_atomic(&PathBuf::from(ready), "ready\n");
    }
    let started = Instant::now();
    while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
    }
    STOP.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn relay_process(args: &Args) -> Result<(), String> {
    install_signal_handlers();
    let dev = args.required("--dev")?;
    let bind = args
        .required("--bind")?
        .parse()
        .map_err(|e| format!("--bind: {e}"))?;
    let peer = args
        .required("--peer")?
        .parse()
        .map_err(|e| format!("--peer: {e}"))?;
    let max = args.max_seconds();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .map_err(|e| format!("open {dev}: {e}"))?;
    let socket = relay::socket(bind, peer).map_err(|e| format!("udp: {e}"))?;
    let endpoint =
        relay::Endpoint::start(Arc::new(file), socket, false).map_err(|e| e.to_string())?;
    let started = Instant::now();
    while !STOP.load(Ordering::SeqCst) && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = &endpoint.counters;
    println!(
        "relay {dev}: dev->udp {} udp->dev {} write errors {}",
        c.dev_to_udp.load(Ordering::Relaxed),
        c.udp_to_dev.load(Ordering::Relaxed),
        c.write_errors.load(Ordering::Relaxed)
    );
    // The device reader may be parked in a FUSE read; exiting the process ends it.
    std::process::exit(0);
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = Args(argv.clone());
    let result = match argv.first().map(String::as_str) {
        Some("host") => host(&args),
        Some("relay") => relay_process(&args),
        Some("plain") => plain(&args),
        _ => Err(
            "usage: tunnel-sim host --ns-a A --ns-b B [--ns-host R] [--fuse DIR] \
                  [--relay inproc|none] [--strict] [--stats FILE] [--ready FILE] \
                  [--max-seconds N] | tunnel-sim relay --dev PATH --bind IP:PORT --peer IP:PORT \
                  | tunnel-sim plain --ns-a A --ns-b B [--ns-host R] [--ready FILE]"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunnel-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
