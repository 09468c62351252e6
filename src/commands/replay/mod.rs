//! `conveyor replay`: re-run a stage over input it already processed, into
//! the live outputs; rebuild a state store or a sink from the topics.
//! docs/replay.md is the guide. What makes it safe:
//!
//! - **Nothing runs beside it.** It refuses while any consumer group it
//!   would move has live members, and names them.
//! - **Plan first.** Topics, partitions, offsets and message counts are
//!   printed; nothing changes without `--yes`.
//! - **Recorded, resumable.** The plan and its generation go to
//!   `conveyor.replays` before anything moves; each step (rewind, run,
//!   finish) is idempotent and the status is recorded after it, so an
//!   interrupted replay continues with `conveyor replay resume`.
//! - **State kept or reset, consistently.** A stateful job's store is
//!   rewound through its changelog under a new epoch (see
//!   `conveyor_stream::changelog`): kept state with the position moved back,
//!   or every key deleted. The running job and every later restore see the
//!   same thing, and writers of the old epoch are ignored.
//! - **Newer wins downstream.** Outputs carry the replay generation; the
//!   sinks order versions by (event time, generation), so a re-emitted
//!   event with changed content supersedes the first run's and identical
//!   content changes nothing. Stateful consumers drop re-emitted inputs
//!   they applied (same event ids), so a replay of normalize reserves no
//!   stock twice and buys no label twice.
//! - **Bounded.** A range replay stops at its end and puts the groups
//!   back where live processing was; `--to now` ends where the input ended
//!   when planned, and live processing continues from there.

mod diff;
mod plan;
mod progress;
mod rebuild;
pub(crate) mod record;
mod sandbox;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{OutRecord, Producer};
use conveyor_runtime::shutdown::Shutdown;
use conveyor_stream::changelog;
use conveyor_stream::merge::MergeClock;
use conveyor_stream::{JobSpec, ReplayRun, Summary};

pub use plan::Bound;
pub(crate) use sandbox::run_to_rest;

/// `conveyor replay sandbox` and `replay diff` (for the demo).
pub(crate) use diff::run as diff_run;
use plan::JobInput;
use progress::Progress;
use record::{Kind, ReplayJob, Status};
pub(crate) use sandbox::run as sandbox_run;

use super::stage::RunCtx;
use crate::cli::{ReplayCommand, SinkTarget};

pub async fn command(config: &Config, cmd: ReplayCommand) -> anyhow::Result<()> {
    match cmd {
        ReplayCommand::Live {
            stage,
            channel,
            from,
            to,
            reset_state,
            window,
            yes,
        } => {
            let range = Range {
                from,
                to,
                reset_state,
                window,
            };
            live(config, &stage, channel.as_deref(), &range, yes).await
        }
        ReplayCommand::Sandbox {
            name,
            from,
            to,
            replace,
            yes,
        } => sandbox::run(config, &name, &from, &to, replace, yes).await,
        ReplayCommand::Diff { name, csv, json } => {
            diff::run(config, &name, csv.as_deref(), json).await
        }
        ReplayCommand::Resume { id } => resume(config, id.as_deref()).await,
        ReplayCommand::Status { json } => status(config, json).await,
        ReplayCommand::Rebuild { store, sink, yes } => match (store, sink) {
            (Some(store), None) => rebuild::store(config, &store, yes).await,
            (None, Some(sink)) => rebuild::sink(config, sink, yes).await,
            _ => anyhow::bail!(
                "say what to rebuild: --store <job>.<store> or --sink clickhouse|scylla"
            ),
        },
    }
}

/// The stages a live replay can re-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Normalize,
    Allocate,
    Route,
    Label,
    Syncback,
}

impl Stage {
    fn parse(s: &str) -> anyhow::Result<Stage> {
        Ok(match s {
            "normalize" => Stage::Normalize,
            "allocate" => Stage::Allocate,
            "route" => Stage::Route,
            "label" => Stage::Label,
            "syncback" => Stage::Syncback,
            "sink-clickhouse" | "sink-scylla" | "clickhouse" | "scylla" => anyhow::bail!(
                "sinks are rebuilt, not replayed: `conveyor replay rebuild --sink clickhouse|scylla`"
            ),
            _ => anyhow::bail!(
                "unknown stage `{s}`: normalize, allocate, route, label or syncback"
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Stage::Normalize => "normalize",
            Stage::Allocate => "allocate",
            Stage::Route => "route",
            Stage::Label => "label",
            Stage::Syncback => "syncback",
        }
    }

    /// The stage's jobs (normalize: one per enabled channel, or `channel`'s).
    fn jobs(self, config: &Config, channel: Option<&str>) -> anyhow::Result<Vec<JobSpec>> {
        if channel.is_some() && self != Stage::Normalize {
            anyhow::bail!("--channel applies to normalize only");
        }
        Ok(match self {
            Stage::Normalize => {
                let channels: Vec<&String> = config
                    .channels
                    .enabled
                    .iter()
                    .filter(|c| channel.is_none_or(|w| w == c.as_str()))
                    .collect();
                if channels.is_empty() {
                    anyhow::bail!("channel `{}` is not enabled", channel.unwrap_or_default());
                }
                channels
                    .into_iter()
                    .map(|c| super::normalize::job_spec(config, c))
                    .collect::<anyhow::Result<_>>()?
            }
            Stage::Allocate => super::allocate::job_specs(config)?.into(),
            Stage::Route => super::route::job_specs(config)?.into(),
            Stage::Label => vec![super::label::job_spec(config)?],
            Stage::Syncback => vec![super::syncback::job_spec(config)?],
        })
    }

    /// Whether `job` is one of the stage's internal jobs, reading a command
    /// topic its feeds (and each other) write: it follows that topic until
    /// the stage is at rest instead of re-reading a range.
    fn follows(self, job: &str) -> bool {
        use conveyor_processors::{allocate, route};
        match self {
            Stage::Allocate => [allocate::jobs::INVENTORY, allocate::jobs::ALLOCATE].contains(&job),
            Stage::Route => job == route::jobs::ROUTE,
            _ => false,
        }
    }

    /// The stage's feeds in order of precedence at equal event times (see
    /// `conveyor_stream::merge`): stock received in the same millisecond
    /// as an order counts for it; route sees an order before the
    /// allocation made for it.
    fn precedence(self, job: &str) -> usize {
        use conveyor_processors::{allocate, route};
        let order: &[&str] = match self {
            Stage::Allocate => &[allocate::jobs::STOCK_FEED, allocate::jobs::ORDER_FEED],
            Stage::Route => &[route::jobs::ORDER_FEED, route::jobs::ALLOCATION_FEED],
            _ => &[],
        };
        order.iter().position(|j| *j == job).unwrap_or(order.len())
    }

    /// Why the state may not be kept, if it may not.
    fn keep_refused(self) -> Option<&'static str> {
        match self {
            Stage::Allocate | Stage::Route => Some(
                "its jobs drop every command they already applied (effectively once), so re-reading the range with their state kept would change nothing. Use --reset-state to decide every order again from the whole input under the current config, or `conveyor replay sandbox` to compare a policy first",
            ),
            _ => None,
        }
    }

    /// Why the state may not be reset, if it may not.
    fn reset_refused(self) -> Option<&'static str> {
        match self {
            Stage::Normalize | Stage::Allocate | Stage::Route => None,
            Stage::Label => Some(
                "the label store is the record of which labels were bought: without it a re-run would buy them again. Replay label with its state kept",
            ),
            Stage::Syncback => Some(
                "the syncback store is the record of what each channel confirmed: without it a re-run would push every shipment to the channels again. Replay syncback with its state kept",
            ),
        }
    }

    async fn run(
        self,
        config: &Config,
        shutdown: &Shutdown,
        ctx: RunCtx,
    ) -> anyhow::Result<Vec<(String, Summary)>> {
        match self {
            Stage::Normalize => super::normalize::run(config, shutdown, ctx).await,
            Stage::Allocate => super::allocate::run(config, shutdown, ctx).await,
            Stage::Route => super::route::run(config, shutdown, ctx).await,
            Stage::Label => super::label::run(config, shutdown, ctx).await,
            Stage::Syncback => super::syncback::run(config, shutdown, ctx).await,
        }
    }
}

/// A live replay's range and state, as the user gave them.
pub(crate) struct Range {
    pub from: String,
    pub to: String,
    pub reset_state: bool,
    /// allocate, route: see `conveyor_stream::merge`.
    pub window: String,
}

impl Range {
    /// The whole input, state kept or reset, in event-time order.
    pub fn all(reset_state: bool) -> Range {
        Range {
            from: "earliest".into(),
            to: "now".into(),
            reset_state,
            window: "0s".into(),
        }
    }
}

/// Parses a window: `0`, `500ms`, `5s`, `2m`.
fn parse_window(s: &str) -> anyhow::Result<u64> {
    if s.trim() == "0" {
        return Ok(0);
    }
    let span: jiff::Span = s
        .trim()
        .parse()
        .with_context(|| format!("--window `{s}`: expected a duration such as 0s, 500ms, 5s"))?;
    let ms = plan::span_ms(&span).with_context(|| format!("--window `{s}`"))?;
    anyhow::ensure!(ms >= 0, "--window `{s}` is negative");
    Ok(ms as u64)
}

pub(crate) async fn live(
    config: &Config,
    stage: &str,
    channel: Option<&str>,
    range: &Range,
    yes: bool,
) -> anyhow::Result<()> {
    let stage = Stage::parse(stage)?;
    let (from, to, reset_state) = (range.from.as_str(), range.to.as_str(), range.reset_state);
    let window_ms = parse_window(&range.window)?;
    if reset_state {
        if let Some(why) = stage.reset_refused() {
            anyhow::bail!("refusing --reset-state for {}: {why}", stage.name());
        }
    } else if let Some(why) = stage.keep_refused() {
        anyhow::bail!(
            "refusing to replay {} with its state kept: {why}",
            stage.name()
        );
    }
    let now = record::now_ms();
    let (from_b, to_b) = (Bound::parse(from, now)?, Bound::parse(to, now)?);
    if reset_state && (to_b != Bound::Now || from_b != Bound::Earliest) {
        anyhow::bail!("--reset-state needs --from earliest and --to now: a store rebuilt from part of its input would miss the rest");
    }
    let specs = stage.jobs(config, channel)?;
    let inputs: Vec<JobInput> = specs
        .iter()
        .map(|s| JobInput {
            job: s.name.clone(),
            group: s.group_id.clone(),
            inputs: s.inputs.clone(),
            changelog: s.store.as_ref().map(|st| st.changelog.clone()),
            follow: stage.follows(&s.name),
        })
        .collect();
    let groups: Vec<String> = inputs.iter().map(|j| j.group.clone()).collect();
    plan::ensure_idle(config, &groups, "replay")?;
    let parts = plan::build(config, &inputs, &from_b, &to_b, true).await?;
    let jobs = record::load(config).await?;
    if let Some(open) = jobs
        .iter()
        .find(|j| j.status != Status::Done && j.groups().iter().any(|g| groups.contains(g)))
    {
        anyhow::bail!(
            "replay {} over the same jobs is unfinished: finish it first with `conveyor replay resume {}`",
            open.id,
            open.id
        );
    }
    let generation = record::next_generation(&jobs);
    let mut job = ReplayJob {
        reset_state,
        from: from.to_string(),
        to: to.to_string(),
        window_ms,
        ..ReplayJob::new(Kind::Live, stage.name(), generation, parts)
    };
    println!(
        "replay {} (generation {generation}): {} from {from} to {to}, state {}",
        job.id,
        stage.name(),
        if reset_state { "RESET" } else { "kept" }
    );
    plan::print(&job.parts);
    if generation >= conveyor_sinks::event::GENERATIONS as u16 {
        println!(
            "warning: generation {generation} is past {}: the sinks order it equal to the last; a later replay of the same events may not supersede this one",
            conveyor_sinks::event::GENERATIONS - 1
        );
    }
    if job.parts.iter().any(|p| p.follow) {
        println!(
            "every order is decided again under the current config, its inputs re-read in event-time order (window {window_ms} ms); the internal jobs start from empty stores at the end of their command topics and run until the stage is at rest. Outputs carry generation {generation} and supersede the first run's in the sinks; a changed {} reaches the live stages after it ({}), which re-plan and label what changed (a shipment already labeled keeps its label).",
            if stage == Stage::Allocate { "allocation" } else { "plan" },
            if stage == Stage::Allocate { "route, label" } else { "label" }
        );
    }
    if !yes {
        println!("nothing changed: run again with --yes to start");
        return Ok(());
    }
    record::save(config, &mut job).await?;
    execute(config, &mut job).await
}

/// Every recorded replay, oldest first, as (messages, run millis).
pub(crate) async fn recorded(config: &Config) -> anyhow::Result<Vec<(u64, u64)>> {
    Ok(record::load(config)
        .await?
        .into_iter()
        .map(|j| (j.messages, j.run_ms))
        .collect())
}

/// Runs the steps `job` has not done yet.
async fn execute(config: &Config, job: &mut ReplayJob) -> anyhow::Result<()> {
    let stage = Stage::parse(&job.target)?;
    if job.status == Status::Planned {
        rewind(config, &mut *job).await?;
        job.status = Status::Prepared;
        record::save(config, job).await?;
    }
    if job.status == Status::Prepared {
        if !run(config, job, stage).await? {
            record::save(config, job).await?;
            anyhow::bail!(
                "replay {} interrupted; continue it with `conveyor replay resume {}`",
                job.id,
                job.id
            );
        }
        finish(config, job).await?;
        job.status = Status::Done;
        record::save(config, job).await?;
    }
    let secs = job.run_ms as f64 / 1000.0;
    println!(
        "replay {} done: {} messages in {secs:.1}s ({:.0} messages/s); live processing resumes where it was",
        job.id,
        job.messages,
        job.messages as f64 / secs.max(1e-3)
    );
    Ok(())
}

/// Step 1: moves each stateful job's store back to `from` (kept or reset)
/// under the replay's epoch, and every group's offsets to `from`.
async fn rewind(config: &Config, job: &mut ReplayJob) -> anyhow::Result<()> {
    let reader = changelog::reader(&config.kafka, "conveyor-replay")?;
    let producer = Producer::new(&config.kafka, "replay")?;
    let epoch = i64::from(job.generation);
    let reset = job.reset_state;
    for p in &mut job.parts {
        let Some(cl) = p.changelog.clone() else {
            continue;
        };
        let cl = &cl;
        let snap = changelog::snapshot(&reader, cl, p.partition).await?;
        let current = snap.replay.marker.map_or(0, |m| m.epoch);
        let position = snap.replay.marker.map(|m| m.position);
        if current == epoch {
            // Rewound before an interruption (the position is ours: at
            // `from` or past it), or another replay took this generation.
            if position.is_some_and(|x| x >= p.from) {
                continue;
            }
            anyhow::bail!("{cl}[{}] is already at epoch {epoch} from another replay (was the replays topic lost?): start a new replay", p.partition);
        }
        // The store's position is the truth (the group's offset may lag it
        // by a batch): live processing resumes there at the earliest.
        if let Some(x) = position {
            p.resume_at = p.resume_at.max(x);
        }
        if current > epoch {
            anyhow::bail!("{cl}[{}] is at epoch {current}, newer than this replay's {epoch}: a later replay moved it", p.partition);
        }
        let (entries, marker) = changelog::rewind_records(
            cl,
            p.partition,
            &snap.replay,
            &snap.state,
            p.from,
            epoch,
            reset,
        )
        .map_err(anyhow::Error::msg)?;
        send_all(&producer, &entries).await?;
        send_all(&producer, &[marker]).await?;
        println!(
            "rewound {cl}[{}] to offset {} (epoch {epoch}; {} of {} keys {})",
            p.partition,
            p.from,
            entries.len(),
            snap.state.len(),
            if reset { "deleted" } else { "settled" }
        );
    }
    let offsets: Vec<_> = job
        .parts
        .iter()
        .map(|p| (p.group.clone(), p.topic.clone(), p.partition, p.from))
        .collect();
    plan::commit(config, &offsets)
}

async fn send_all(producer: &Producer, records: &[OutRecord]) -> anyhow::Result<()> {
    for r in producer.send_batch(records).await {
        r.context("cannot write to the changelog")?;
    }
    Ok(())
}

/// Step 2: runs the stage's jobs from where their groups are to the
/// plan's ends, with a progress bar. `false` if interrupted first.
async fn run(config: &Config, job: &mut ReplayJob, stage: Stage) -> anyhow::Result<bool> {
    let at = plan::committed(config, &job.parts)?;
    let mut runs: BTreeMap<String, ReplayRun> = BTreeMap::new();
    let mut total = 0u64;
    for p in &job.parts {
        if p.follow {
            runs.entry(p.job.clone()).or_insert_with(|| ReplayRun {
                generation: job.generation,
                follow: true,
                ..ReplayRun::default()
            });
            continue;
        }
        let pos = p.position(&at);
        if pos >= p.to {
            continue;
        }
        let r = runs.entry(p.job.clone()).or_insert_with(|| ReplayRun {
            generation: job.generation,
            ..ReplayRun::default()
        });
        r.until.insert((p.topic.clone(), p.partition), p.to);
        total += (p.to - pos) as u64;
    }
    if runs.is_empty() {
        return Ok(true);
    }
    let follows = job.parts.iter().any(|p| p.follow);
    let mut bounded: Vec<String> = runs
        .iter()
        .filter(|(_, r)| !r.follow)
        .map(|(n, _)| n.clone())
        .collect();
    bounded.sort_by_key(|j| stage.precedence(j));
    if follows && bounded.len() > 1 {
        let window = std::time::Duration::from_millis(job.window_ms);
        let clock = Arc::new(MergeClock::new(window, bounded));
        for r in runs.values_mut().filter(|r| !r.follow) {
            r.clock = Some(clock.clone());
        }
    }
    let counters: Vec<_> = runs
        .values()
        .filter(|r| !r.follow)
        .map(|r| r.progress.clone())
        .collect();
    let shutdown = Shutdown::on_signals();
    let ctx = RunCtx {
        health: None,
        replay: Some(Arc::new(runs)),
    };
    let mut bar = Progress::new(&format!("replay {}", stage.name()), total);
    let both = async {
        let stage_run = stage.run(config, &shutdown, ctx);
        let rest = wait_for_rest(config, &job.parts, follows, &shutdown);
        tokio::pin!(stage_run, rest);
        let mut rested = None;
        loop {
            tokio::select! {
                r = &mut stage_run => return (r, rested.unwrap_or(false)),
                w = &mut rest, if rested.is_none() => {
                    rested = Some(match w {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot watch the replay's jobs; stopping them");
                            shutdown.trigger();
                            false
                        }
                    });
                }
            }
        }
    };
    let ((res, rested), done) = progress::track(&mut bar, &counters, both).await;
    let (elapsed, rate) = bar.finish(done);
    job.messages += done;
    job.run_ms += elapsed.as_millis() as u64;
    for (name, s) in res? {
        println!(
            "  {name}: processed {} (dropped as already applied: {} by position, {} re-emissions), dead-lettered {}, outputs {}",
            s.processed, s.skipped, s.duplicates, s.dead_lettered, s.outputs
        );
    }
    println!(
        "  {done} messages in {:.1}s: {rate:.0} messages/s",
        elapsed.as_secs_f64()
    );
    let at = plan::committed(config, &job.parts)?;
    Ok(rested && job.parts.iter().all(|p| p.position(&at) >= p.to))
}

/// Until the stage is at rest, then stops its jobs (`shutdown`): every
/// bounded part reached its end and every internal job consumed its
/// command topic, with the topics' ends unchanged over two checks (the
/// jobs write each other's inputs, so one look is not enough). At once
/// if the stage has no internal jobs (its bounded jobs end themselves).
/// `false` if stopped first.
async fn wait_for_rest(
    config: &Config,
    parts: &[plan::PartPlan],
    follows: bool,
    shutdown: &Shutdown,
) -> anyhow::Result<bool> {
    if !follows {
        return Ok(true);
    }
    let probe =
        conveyor_runtime::kafka::Consumer::new(&config.kafka, "replay", "conveyor-replay-probe")?;
    let t = std::time::Duration::from_secs(10);
    let groups = plan::GroupOffsets::new(config, parts)?;
    let (mut quiet, mut last, mut announced) = (0, Vec::new(), false);
    while !shutdown.is_triggered() {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let at = groups.committed()?;
        let bounded_done = parts
            .iter()
            .filter(|p| !p.follow)
            .all(|p| p.position(&at) >= p.to);
        let mut ends = Vec::new();
        let mut consumed = true;
        for p in parts.iter().filter(|p| p.follow) {
            let (_, high) = probe.watermarks(&p.topic, p.partition, t)?;
            consumed &= p.position(&at) >= high;
            ends.push(high);
        }
        if bounded_done && !announced {
            announced = true;
            eprintln!("every input re-read; waiting for the internal jobs to come to rest");
        }
        quiet = if bounded_done && consumed && ends == last {
            quiet + 1
        } else {
            0
        };
        last = ends;
        if quiet >= 2 {
            shutdown.trigger();
            return Ok(true);
        }
    }
    Ok(false)
}

/// Step 3: a range replay puts each group (and store position) back where
/// live processing was.
async fn finish(config: &Config, job: &ReplayJob) -> anyhow::Result<()> {
    let producer = Producer::new(&config.kafka, "replay")?;
    let epoch = i64::from(job.generation);
    let mut offsets = Vec::new();
    for p in job.parts.iter().filter(|p| p.resume_at > p.to) {
        if let Some(cl) = &p.changelog {
            let (_, marker) = changelog::batch_records(
                cl,
                p.partition,
                &Default::default(),
                p.resume_at,
                epoch,
                None,
            );
            send_all(&producer, &[marker]).await?;
        }
        offsets.push((p.group.clone(), p.topic.clone(), p.partition, p.resume_at));
    }
    plan::commit(config, &offsets)
}

async fn resume(config: &Config, id: Option<&str>) -> anyhow::Result<()> {
    let jobs = record::load(config).await?;
    let mut job = match id {
        Some(id) => jobs
            .into_iter()
            .find(|j| j.id == id)
            .with_context(|| format!("no replay `{id}` (see `conveyor replay status`)"))?,
        None => jobs
            .into_iter()
            .rev()
            .find(|j| j.status != Status::Done)
            .context("no unfinished replay to resume")?,
    };
    if job.status == Status::Done {
        println!("replay {} is already done", job.id);
        return Ok(());
    }
    plan::ensure_idle(config, &job.groups(), "resume the replay")?;
    println!(
        "resuming replay {} ({:?}, step after {:?})",
        job.id, job.kind, job.status
    );
    match job.kind {
        Kind::Live => execute(config, &mut job).await,
        Kind::RebuildSink => rebuild::resume_sink(config, &mut job).await,
        Kind::Sandbox => anyhow::bail!(
            "a sandbox is not resumed: run it again with `conveyor replay sandbox {} --replace`",
            job.target
        ),
        Kind::RebuildStore => anyhow::bail!(
            "a store rebuild is not resumed: run `conveyor replay rebuild --store {}` again",
            job.target
        ),
    }
}

async fn status(config: &Config, json: bool) -> anyhow::Result<()> {
    let jobs = record::load(config).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no replays recorded");
        return Ok(());
    }
    println!(
        "{:<44} {:<13} {:<20} {:>4} {:<9} {:>21} {:>10}",
        "id", "kind", "target", "gen", "status", "messages done/total", "msgs/s"
    );
    for j in &jobs {
        let done = if j.status == Status::Done {
            j.messages as i64
        } else {
            progress_of(config, j).unwrap_or(0)
        };
        let rate = if j.run_ms > 0 {
            format!("{:.0}", j.messages as f64 * 1000.0 / j.run_ms as f64)
        } else {
            "-".into()
        };
        println!(
            "{:<44} {:<13} {:<20} {:>4} {:<9} {:>21} {:>10}",
            j.id,
            format!("{:?}", j.kind),
            j.target,
            j.generation,
            format!("{:?}", j.status).to_lowercase(),
            format!("{done}/{}", j.total_messages()),
            rate
        );
    }
    Ok(())
}

/// Messages an unfinished replay has done, from its groups' offsets.
pub(crate) fn progress_of(config: &Config, j: &ReplayJob) -> anyhow::Result<i64> {
    if j.status == Status::Planned {
        return Ok(0);
    }
    let at = plan::committed(config, &j.parts)?;
    Ok(j.parts
        .iter()
        .map(|p| (p.position(&at).min(p.to) - p.from).max(0))
        .sum())
}

/// Which sink a rebuild targets.
fn sink_name(s: SinkTarget) -> &'static str {
    match s {
        SinkTarget::Clickhouse => super::sink::CLICKHOUSE,
        SinkTarget::Scylla => super::sink::SCYLLA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_as_durations() {
        assert_eq!(parse_window("0").unwrap(), 0);
        assert_eq!(parse_window("0s").unwrap(), 0);
        assert_eq!(parse_window("500ms").unwrap(), 500);
        assert_eq!(parse_window("5s").unwrap(), 5_000);
        assert_eq!(parse_window("2m").unwrap(), 120_000);
        assert!(parse_window("soon").is_err());
    }

    #[test]
    fn allocate_and_route_follow_their_internal_jobs_and_need_a_reset() {
        assert!(Stage::Allocate.follows("allocate") && Stage::Allocate.follows("inventory"));
        assert!(!Stage::Allocate.follows("allocate-feed"));
        assert!(Stage::Route.follows("route") && !Stage::Route.follows("route-orders"));
        assert!(!Stage::Normalize.follows("normalize-shopify"));
        assert!(Stage::Allocate.keep_refused().is_some());
        assert!(Stage::Route.reset_refused().is_none());
        assert!(Stage::Label.keep_refused().is_none());
        assert!(
            Stage::Route.precedence("route-orders") < Stage::Route.precedence("route-allocations")
        );
        assert!(
            Stage::Allocate.precedence("inventory-feed")
                < Stage::Allocate.precedence("allocate-feed")
        );
    }
}
