//! ClickHouse for dev and CI: the real ClickHouse 26.7 engine from npm's
//! libchdb package, turned into an HTTP + native server.
//!
//! `libchdb.so` exports `chdb_query_cmdline(argc, argv)`, which runs
//! clickhouse-local with the given arguments. With `--path`, listen ports and
//! a query that starts the listeners and then never ends, it serves until
//! the process is signalled. This module downloads the library once (cached)
//! and, as the hidden `conveyor dev clickhouse-server` command, is the tiny
//! launcher that loads it.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

pub const PACKAGE: &str = "@chdb/lib-linux-x64-gnu";
pub const VERSION: &str = "26.7.3-stable.1";

pub fn library(cache: &Path) -> PathBuf {
    cache.join(format!("libchdb-{VERSION}")).join("libchdb.so")
}

/// Downloads the library with npm into the cache when it is not there yet.
pub fn ensure_installed(cache: &Path) -> anyhow::Result<PathBuf> {
    let lib = library(cache);
    if lib.exists() {
        return Ok(lib);
    }
    let dir = lib.parent().context("cache path has no parent")?;
    let tmp = dir.with_extension("download");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    println!(
        "  downloading ClickHouse engine {PACKAGE}@{VERSION} from npm (first run only, ~180 MB)"
    );
    let out = Command::new("npm")
        .args([
            "pack",
            &format!("{PACKAGE}@{VERSION}"),
            "--silent",
            "--pack-destination",
        ])
        .arg(&tmp)
        .output()
        .context("cannot run npm (needed once to fetch libchdb); install Node.js/npm")?;
    if !out.status.success() {
        anyhow::bail!("npm pack failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let tgz = std::fs::read_dir(&tmp)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .context("npm pack produced no .tgz")?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&tmp)
        .arg("package/libchdb.so")
        .status()
        .context("cannot run tar")?;
    if !status.success() {
        anyhow::bail!("extracting libchdb.so from {} failed", tgz.display());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::rename(tmp.join("package").join("libchdb.so"), &lib)?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(lib)
}

/// The command that starts the launcher (this binary) for ClickHouse.
pub fn command(
    lib: &Path,
    data: &Path,
    http_port: u16,
    tcp_port: u16,
    log: &Path,
) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the conveyor executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["dev", "clickhouse-server", "--lib"])
        .arg(lib)
        .arg("--path")
        .arg(data)
        .args([
            "--http-port",
            &http_port.to_string(),
            "--tcp-port",
            &tcp_port.to_string(),
        ])
        .arg("--log")
        .arg(log);
    Ok(cmd)
}

type QueryCmdline = unsafe extern "C" fn(c_int, *mut *mut c_char) -> *mut c_void;
type ResultError = unsafe extern "C" fn(*mut c_void) -> *const c_char;

/// Loads libchdb and runs ClickHouse as a server until the process is
/// signalled. Returns only if ClickHouse stops on its own (an error).
pub fn run_server(
    lib: &Path,
    path: &Path,
    http_port: u16,
    tcp_port: u16,
    log: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    let args = [
        "clickhouse".to_string(),
        format!("--path={}", path.display()),
        "--listen_host=127.0.0.1".into(),
        format!("--http_port={http_port}"),
        format!("--tcp_port={tcp_port}"),
        format!("--logger.log={}", log.display()),
        "--logger.level=information".into(),
        "--multiquery".into(),
        "--query=SYSTEM START LISTEN QUERIES ALL; \
         SELECT sleepEachRow(1) FROM system.numbers SETTINGS max_block_size = 1 FORMAT Null"
            .into(),
    ];
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let mut argv: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr() as *mut c_char).collect();
    eprintln!(
        "clickhouse (libchdb {VERSION}) on 127.0.0.1: http {http_port}, native {tcp_port}, data {}",
        path.display()
    );
    // SAFETY: the symbols are looked up with the signatures libchdb's C API
    // documents; argv outlives the call (the call blocks while serving).
    unsafe {
        let library = libloading::Library::new(lib)
            .with_context(|| format!("cannot load {}", lib.display()))?;
        let query: libloading::Symbol<QueryCmdline> = library
            .get(b"chdb_query_cmdline\0")
            .context("libchdb has no chdb_query_cmdline")?;
        let result = query(argv.len() as c_int, argv.as_mut_ptr());
        let error = library
            .get::<ResultError>(b"chdb_result_error\0")
            .ok()
            .and_then(|f| {
                let p = f(result);
                (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
            });
        anyhow::bail!(
            "ClickHouse stopped: {}",
            error.unwrap_or_else(|| "the serving query ended".into())
        )
    }
}
