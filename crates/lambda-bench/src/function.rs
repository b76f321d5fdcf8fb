//! One execution environment: a function's release binary started as Lambda starts a
//! `provided.al2023` bootstrap (a clean environment holding Lambda's variables, the Runtime API
//! address and the function's own variables), with its init time, output and memory observed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::body::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::emulator::{InitOutcome, Invocation, RuntimeApi};
use crate::error::BenchError;

/// How to start a function.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The function's name (its binary name, e.g. `orders-api`).
    pub name: String,
    /// The executable.
    pub binary: PathBuf,
    /// The function's own environment (table and bus names) and the AWS endpoint variables.
    pub env: BTreeMap<String, String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
    /// The function timeout (each invocation's deadline).
    pub timeout: Duration,
    /// A directory to copy the function's output into, one file per environment.
    pub log_dir: Option<PathBuf>,
}

impl Launch {
    /// The environment Lambda gives a `provided.al2023` function, then the function's own.
    /// The parent's environment is not inherited (no `HOME`, no profile files, no `RUST_LOG`),
    /// as on Lambda.
    pub fn environment(&self, runtime_api: &str) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = [
            ("AWS_LAMBDA_FUNCTION_NAME", self.name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/23/[$LATEST]00000000000000000000000000000000".to_owned(),
            ),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_SESSION_TOKEN", "test".to_owned()),
            ("_HANDLER", "bootstrap".to_owned()),
            ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
            ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.env.clone());
        env
    }
}

/// What the process printed, kept small: byte and line counts, the structured `init` line our
/// functions log (see `platform::init`), and the last lines for error messages.
#[derive(Debug, Default)]
struct Output {
    stdout_bytes: u64,
    stdout_lines: u64,
    init_report: Option<serde_json::Value>,
    tail: Vec<String>,
    copy: Option<std::fs::File>,
}

impl Output {
    fn take_line(&mut self, line: &str, stdout: bool) {
        if stdout {
            self.stdout_bytes += line.len() as u64 + 1;
            self.stdout_lines += 1;
            if self.init_report.is_none() && line.contains("\"started_at_us\"") {
                self.init_report = serde_json::from_str(line).ok();
            }
        }
        if let Some(file) = self.copy.as_mut() {
            use std::io::Write as _;
            // A copy for reading, best effort: a full disk must not fail the measurement.
            let _ = writeln!(file, "{line}");
        }
        if self.tail.len() == 20 {
            self.tail.remove(0);
        }
        self.tail.push(line.chars().take(500).collect());
    }
}

/// A started function: its process, its Runtime API and what it printed.
pub struct Running {
    name: String,
    child: Child,
    api: RuntimeApi,
    output: Arc<Mutex<Output>>,
    spawned_epoch_us: u128,
    init: Duration,
    init_schedule: Option<Schedule>,
}

/// Where the main thread's time went, from the kernel's scheduler statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Time on a CPU.
    pub on_cpu: Duration,
    /// Time runnable but waiting for a CPU (other processes' load, on a shared machine).
    pub waiting: Duration,
}

/// The scheduler statistics of a thread (`/proc/<pid>/schedstat`: ns on CPU, ns waiting on a
/// run queue, time slices). `None` where the kernel does not provide them.
pub fn schedule_of(pid: u32) -> Option<Schedule> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let on_cpu = fields.next()??;
    let waiting = fields.next()??;
    Some(Schedule {
        on_cpu: Duration::from_nanos(on_cpu),
        waiting: Duration::from_nanos(waiting),
    })
}

impl Running {
    /// Starts `launch`'s binary against a fresh emulator and waits for its first `/next` poll.
    /// Init time runs from just before `exec` to that poll, as Lambda's `Init Duration` does.
    pub async fn start(launch: &Launch, init_timeout: Duration) -> Result<Self, BenchError> {
        let api = RuntimeApi::start(&launch.name, launch.timeout).await?;
        let mut command = Command::new(&launch.binary);
        command
            .env_clear()
            .envs(launch.environment(&api.address()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_epoch_us = epoch_micros();
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| BenchError::io(format!("starting {}", launch.binary.display()), e))?;
        let copy = match &launch.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
                let path = dir.join(format!("{}-{spawned_epoch_us}.log", launch.name));
                Some(
                    std::fs::File::create(&path)
                        .map_err(|e| BenchError::io(format!("creating {}", path.display()), e))?,
                )
            }
            None => None,
        };
        let output = Arc::new(Mutex::new(Output {
            copy,
            ..Output::default()
        }));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(collect(stdout, Arc::clone(&output), true));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect(stderr, Arc::clone(&output), false));
        }

        let exited = async {
            match child.wait().await {
                Ok(status) => InitOutcome::Exited(format!("the process exited ({status})")),
                Err(e) => InitOutcome::Exited(format!("waiting for the process: {e}")),
            }
        };
        let give_up = async {
            tokio::select! {
                outcome = exited => outcome,
                () = tokio::time::sleep(init_timeout) => InitOutcome::Exited("timeout".to_owned()),
            }
        };
        let polled = api.first_poll(give_up).await;
        let tail = || {
            output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .tail
                .join("\n")
        };
        match polled {
            Ok(at) => Ok(Self {
                // Read while the runtime waits on /next: the counters are current.
                init_schedule: child.id().and_then(schedule_of),
                name: launch.name.clone(),
                child,
                api,
                output,
                spawned_epoch_us,
                init: at.saturating_duration_since(spawned),
            }),
            Err(InitOutcome::Exited(why)) if why == "timeout" => Err(BenchError::InitTimeout {
                function: launch.name.clone(),
                timeout_ms: init_timeout.as_millis(),
                stderr: format!("; last output:\n{}", tail()),
            }),
            Err(InitOutcome::Exited(why) | InitOutcome::Reported(why)) => {
                Err(BenchError::InitFailed {
                    function: launch.name.clone(),
                    message: format!("{why}; last output:\n{}", tail()),
                })
            }
        }
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Exec to first `/next` poll.
    pub fn init_duration(&self) -> Duration {
        self.init
    }

    /// The main thread's CPU and run-queue time from exec to the first poll (the runtime is
    /// single-threaded, so this is nearly all of init's CPU).
    pub fn init_schedule(&self) -> Option<Schedule> {
        self.init_schedule
    }

    /// Wall-clock time of the exec, in microseconds since the epoch (to place the function's own
    /// init marks, which use the same clock).
    pub fn spawned_epoch_us(&self) -> u128 {
        self.spawned_epoch_us
    }

    /// The structured init line the function logged, if any (see `platform::init`). Lines are
    /// read asynchronously: this waits briefly for it.
    pub async fn init_report(&self) -> Option<serde_json::Value> {
        for _ in 0..50 {
            if let Some(report) = self
                .output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .init_report
                .clone()
            {
                return Some(report);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }

    /// Sends one event and waits for the answer.
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Result<Invocation, BenchError> {
        self.api
            .invoke(payload.into())
            .await
            .map_err(|failure| BenchError::NoAnswer {
                function: self.name.clone(),
                request_id: failure.request_id,
                problem: format!(
                    "{}; last output:\n{}",
                    failure.problem,
                    self.output
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .tail
                        .join("\n")
                ),
            })
    }

    /// Bytes and lines the function wrote to stdout (its logs) so far.
    pub fn log_volume(&self) -> (u64, u64) {
        let output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        (output.stdout_bytes, output.stdout_lines)
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64, BenchError> {
        self.status_field("VmHWM")
    }

    /// Current resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Result<u64, BenchError> {
        self.status_field("VmRSS")
    }

    fn status_field(&self, field: &str) -> Result<u64, BenchError> {
        let pid = self.child.id().ok_or_else(|| BenchError::InitFailed {
            function: self.name.clone(),
            message: "the process has exited".to_owned(),
        })?;
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path)
            .map_err(|e| BenchError::io(format!("reading {path}"), e))?;
        status
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .ok_or_else(|| BenchError::input(path, format!("no {field} line")))
    }

    /// CPU time (user + system, all threads) used so far. `/proc` counts in clock ticks of
    /// 10 ms (USER_HZ is 100 on Linux), so this is meaningful over many invocations only.
    pub fn cpu_time(&self) -> Result<Duration, BenchError> {
        let pid = self.child.id().ok_or_else(|| BenchError::InitFailed {
            function: self.name.clone(),
            message: "the process has exited".to_owned(),
        })?;
        let path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&path)
            .map_err(|e| BenchError::io(format!("reading {path}"), e))?;
        // Fields after the parenthesised command name: state is field 3; utime and stime are
        // fields 14 and 15 (1-based), i.e. indices 11 and 12 after the name.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => Ok(Duration::from_millis((user + system) * 10)),
            _ => Err(BenchError::input(path, "no utime/stime fields")),
        }
    }

    /// Ends the process (Lambda freezes and later kills an environment; nothing to flush).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn collect(stream: impl AsyncRead + Unpin, output: Arc<Mutex<Output>>, stdout: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take_line(&line, stdout);
    }
}

/// Microseconds since the Unix epoch (CLOCK_REALTIME, shared by all processes on the machine).
pub fn epoch_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}
