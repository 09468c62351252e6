//! `conveyor`: the one binary. Parses the command line, loads the config and
//! dispatches to a command; errors print once, with what to do, and set the
//! exit code (1 = failed, 2 = usage or not built yet, 3 = topic drift).

/// mimalloc: the pipeline allocates and frees many small records per
/// message; glibc's allocator spent more time on that than the codec did
/// (see `conveyor bench codec`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod commands;
mod dev;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, DevCommand};

/// An error that carries its own exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// A command that later work fills in: exits 2 with a clear message.
pub fn not_built(what: &str, detail: &str) -> anyhow::Error {
    Exit {
        code: 2,
        message: format!(
            "`conveyor {what}` is not built yet: {detail}\nThe README's Status section lists what is built; `conveyor topology` shows each component."
        ),
    }
    .into()
}

/// A usage mistake (unknown name, bad value): exits 2.
pub fn usage(message: String) -> anyhow::Error {
    Exit { code: 2, message }.into()
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when stdout is closed early
    // (`conveyor topology | head`) instead of panicking on a broken pipe.
    // SAFETY: called first thing, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // The ClickHouse launcher hands the process over to libchdb: no runtime,
    // no logging setup of ours.
    if let Command::Dev {
        command:
            DevCommand::ClickhouseServer {
                lib,
                path,
                http_port,
                tcp_port,
                log,
            },
    } = &cli.command
    {
        return match dev::chdb::run_server(lib, path, *http_port, *tcp_port, log) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // The demo prints its own progress; its components' info logs would bury it.
    if matches!(cli.command, Command::Demo) && std::env::var_os("CONVEYOR_LOG").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("CONVEYOR_LOG", "warn,rdkafka=error,librdkafka=error") };
    }
    conveyor_runtime::observability::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::dispatch(cli));
    // Do not let a broker call stuck in a blocking thread hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(1, |x| x.code);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}
