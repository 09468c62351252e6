//! What a replay will do, before it does anything: for every job and input
//! partition, the offsets it re-runs (`from..to`) and where live
//! processing resumes afterwards (`resume_at`), computed from the broker
//! (watermarks, `offsets_for_times`, the groups' committed offsets).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use conveyor_runtime::config::Config;
use conveyor_runtime::kafka::{Admin, Consumer};
use serde::{Deserialize, Serialize};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Where a range starts or ends, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The first retained record.
    Earliest,
    /// The end of each partition when the plan is made.
    Now,
    /// The first record at or after this time (UTC millis).
    Time(i64),
    /// Explicit offsets by partition number (every input topic alike).
    Offsets(BTreeMap<i32, i64>),
}

impl Bound {
    /// Parses `earliest`, `now`, an RFC 3339 time, UTC millis, a duration
    /// ago (`90m`, `2h`, `3d`), or per-partition offsets `0=120,1=340`.
    pub fn parse(s: &str, now_ms: i64) -> anyhow::Result<Bound> {
        let s = s.trim();
        match s {
            "earliest" | "beginning" => return Ok(Bound::Earliest),
            "now" | "latest" | "end" => return Ok(Bound::Now),
            _ => {}
        }
        if s.contains('=') {
            let mut m = BTreeMap::new();
            for part in s.split(',') {
                let (p, o) = part
                    .split_once('=')
                    .with_context(|| format!("`{part}`: expected PARTITION=OFFSET"))?;
                let p: i32 = p
                    .trim()
                    .parse()
                    .with_context(|| format!("`{p}` is not a partition number"))?;
                let o: i64 = o
                    .trim()
                    .parse()
                    .with_context(|| format!("`{o}` is not an offset"))?;
                anyhow::ensure!(
                    p >= 0 && o >= 0,
                    "`{part}`: partitions and offsets are not negative"
                );
                m.insert(p, o);
            }
            return Ok(Bound::Offsets(m));
        }
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(Bound::Time(ms));
        }
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return Ok(Bound::Time(t.as_millisecond()));
        }
        if let Ok(span) = s.parse::<jiff::Span>() {
            let ago = span_ms(&span)
                .with_context(|| format!("`{s}`: use hours, minutes or days (e.g. 2h, 3d)"))?;
            return Ok(Bound::Time(now_ms - ago));
        }
        anyhow::bail!(
            "`{s}`: expected earliest, now, an RFC 3339 time (2026-11-01T00:00:00Z), UTC millis, a duration ago (2h, 3d) or offsets (0=120,1=340)"
        )
    }
}

/// A duration in milliseconds (days are 24 hours; no months or years).
pub fn span_ms(span: &jiff::Span) -> anyhow::Result<i64> {
    Ok(span.total(jiff::SpanTotal::from(jiff::Unit::Millisecond).days_are_24_hours())? as i64)
}

/// One input partition of one job in a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartPlan {
    pub job: String,
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The job's state store changelog (stateful jobs).
    pub changelog: Option<String>,
    /// First offset re-run.
    pub from: i64,
    /// Offset the re-run stops before.
    pub to: i64,
    /// Where live processing resumes afterwards: where it was, or `to`
    /// if that is further.
    pub resume_at: i64,
    /// An internal job of the stage (its input is a command topic the
    /// replayed jobs write): not bounded, it runs until the stage is at
    /// rest. `from` = `to` = `resume_at` is where it starts.
    #[serde(default)]
    pub follow: bool,
}

impl PartPlan {
    pub fn messages(&self) -> i64 {
        (self.to - self.from).max(0)
    }

    /// Where the job stands in this part, from the groups' `committed`
    /// offsets: the next offset to process, never before `from`.
    pub fn position(&self, committed: &Committed) -> i64 {
        committed
            .get(&(self.group.clone(), self.topic.clone(), self.partition))
            .copied()
            .flatten()
            .unwrap_or(self.from)
            .max(self.from)
    }
}

/// The groups' committed offsets by (group, topic, partition).
pub type Committed = BTreeMap<(String, String, i32), Option<i64>>;

/// One job to plan: its name, group, inputs and changelog.
pub struct JobInput {
    pub job: String,
    pub group: String,
    pub inputs: Vec<String>,
    pub changelog: Option<String>,
    /// Follows its input (see [`PartPlan::follow`]): planned from the end
    /// of each partition when planned.
    pub follow: bool,
}

/// The plan of every input partition of `jobs` between `from` and `to`.
/// With `catch_up`, a group behind `from` starts the range where it is
/// (a replay of a stage must not skip what the stage never processed).
pub async fn build(
    config: &Config,
    jobs: &[JobInput],
    from: &Bound,
    to: &Bound,
    catch_up: bool,
) -> anyhow::Result<Vec<PartPlan>> {
    let topics = Admin::new(&config.kafka)?.list_topics().await?;
    let mut out = Vec::new();
    for j in jobs {
        let consumer = Consumer::new(&config.kafka, "replay", &j.group)?;
        let mut parts = Vec::new();
        for t in &j.inputs {
            let (n, _) = topics
                .get(t)
                .with_context(|| format!("topic {t} does not exist (nothing to replay)"))?;
            parts.extend((0..*n).map(|p| (t.clone(), p)));
        }
        let committed = consumer.committed_for(&parts, TIMEOUT)?;
        let at = |b: &Bound, default_end: bool| -> anyhow::Result<BTreeMap<(String, i32), i64>> {
            let mut m = BTreeMap::new();
            let times = match b {
                Bound::Time(ms) => Some(consumer.offsets_for_time(&parts, *ms, TIMEOUT)?),
                _ => None,
            };
            for tp in &parts {
                let (low, high) = consumer.watermarks(&tp.0, tp.1, TIMEOUT)?;
                let o = match b {
                    Bound::Earliest => low,
                    Bound::Now => high,
                    Bound::Time(_) => times
                        .as_ref()
                        .and_then(|t| t.get(tp).copied().flatten())
                        .unwrap_or(high),
                    Bound::Offsets(by_p) => match by_p.get(&tp.1) {
                        Some(o) => *o,
                        None if default_end => high,
                        None => low,
                    },
                };
                m.insert(tp.clone(), o.clamp(low, high));
            }
            Ok(m)
        };
        let (from, to) = if j.follow {
            (&Bound::Now, &Bound::Now)
        } else {
            (from, to)
        };
        let froms = at(from, false)?;
        let tos = at(to, true)?;
        let lows = at(&Bound::Earliest, false)?;
        for tp in &parts {
            // What the job never processed is in the range too (a group
            // behind `from` would otherwise skip it).
            let processed = committed.get(tp).copied().flatten().unwrap_or(lows[tp]);
            let f = if catch_up && !j.follow {
                froms[tp].min(processed)
            } else {
                froms[tp]
            };
            let t = tos[tp].max(f);
            let was = if j.follow { f } else { processed.max(f) };
            out.push(PartPlan {
                job: j.job.clone(),
                group: j.group.clone(),
                topic: tp.0.clone(),
                partition: tp.1,
                changelog: j.changelog.clone(),
                from: f,
                to: t,
                resume_at: was.max(t),
                follow: j.follow,
            });
        }
    }
    Ok(out)
}

/// Consumer groups with live members, and who they are: a replay moves
/// the groups' offsets and rewinds their stores, so nothing may run as
/// them meanwhile.
pub fn live_members(
    config: &Config,
    groups: &[String],
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut busy = Vec::new();
    for g in groups {
        let c = Consumer::new(&config.kafka, "replay", g)?;
        let members = c
            .group_members(TIMEOUT)
            .with_context(|| format!("cannot describe consumer group {g}"))?;
        if !members.is_empty() {
            busy.push((g.clone(), members));
        }
    }
    Ok(busy)
}

/// Refuses with the members' names if any group is live.
pub fn ensure_idle(config: &Config, groups: &[String], what: &str) -> anyhow::Result<()> {
    let busy = live_members(config, groups)?;
    if busy.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = busy
        .iter()
        .map(|(g, m)| format!("{g} ({})", m.join(", ")))
        .collect();
    anyhow::bail!(
        "refusing to {what}: consumer groups with live members: {}. Stop those processes first (the replay moves their offsets and state); a killed process stays a member until its session times out (kafka session.timeout.ms, 6 s by default).",
        list.join("; ")
    )
}

/// Sets each group's committed offsets (the groups must be idle).
pub fn commit(config: &Config, offsets: &[(String, String, i32, i64)]) -> anyhow::Result<()> {
    let mut by_group: BTreeMap<&str, Vec<(&str, i32, i64)>> = BTreeMap::new();
    for (g, t, p, o) in offsets {
        by_group.entry(g).or_default().push((t, *p, *o));
    }
    for (g, parts) in by_group {
        let c = Consumer::new(&config.kafka, "replay", g)?;
        c.commit(&parts)
            .with_context(|| format!("cannot set the offsets of consumer group {g}"))?;
    }
    Ok(())
}

/// The groups' committed offsets for the plan's partitions.
pub fn committed(config: &Config, parts: &[PartPlan]) -> anyhow::Result<Committed> {
    GroupOffsets::new(config, parts)?.committed()
}

/// Clients of the groups that read a plan's partitions, made once for
/// repeated looks (a replay's rest check polls them).
pub struct GroupOffsets {
    groups: Vec<GroupParts>,
}

/// One group's client and the partitions of the plan it reads.
struct GroupParts {
    group: String,
    client: Consumer,
    parts: Vec<(String, i32)>,
}

impl GroupOffsets {
    pub fn new(config: &Config, parts: &[PartPlan]) -> anyhow::Result<GroupOffsets> {
        let mut by_group: BTreeMap<&str, Vec<(String, i32)>> = BTreeMap::new();
        for p in parts {
            by_group
                .entry(&p.group)
                .or_default()
                .push((p.topic.clone(), p.partition));
        }
        let mut groups = Vec::new();
        for (g, tps) in by_group {
            groups.push(GroupParts {
                group: g.to_string(),
                client: Consumer::new(&config.kafka, "replay", g)?,
                parts: tps,
            });
        }
        Ok(GroupOffsets { groups })
    }

    pub fn committed(&self) -> anyhow::Result<Committed> {
        let mut out = BTreeMap::new();
        for g in &self.groups {
            for ((t, p), o) in g.client.committed_for(&g.parts, TIMEOUT)? {
                out.insert((g.group.clone(), t, p), o);
            }
        }
        Ok(out)
    }
}

/// The plan as a table: one row per job and topic, partitions summed.
pub fn print(parts: &[PartPlan]) {
    println!(
        "{:<24} {:<34} {:>5} {:>22} {:>12}",
        "job", "topic", "parts", "offsets (first..end)", "messages"
    );
    /// One job and topic, its partitions summed.
    #[derive(Default)]
    struct Row {
        parts: usize,
        lo: i64,
        hi: i64,
        messages: i64,
        follow: bool,
    }
    let mut rows: BTreeMap<(&str, &str), Row> = BTreeMap::new();
    for p in parts {
        let r = rows.entry((&p.job, &p.topic)).or_insert(Row {
            lo: i64::MAX,
            follow: p.follow,
            ..Row::default()
        });
        r.parts += 1;
        r.lo = r.lo.min(p.from);
        r.hi = r.hi.max(p.to);
        r.messages += p.messages();
    }
    for ((job, topic), r) in &rows {
        let (n, lo, hi, msgs) = (r.parts, r.lo, r.hi, r.messages);
        if r.follow {
            // An internal job: from the end of its command topic on.
            println!(
                "{job:<24} {topic:<34} {n:>5} {:>22} {:>12}",
                format!("{hi}.. (follows)"),
                "until rest"
            );
            continue;
        }
        println!(
            "{job:<24} {topic:<34} {n:>5} {:>22} {msgs:>12}",
            format!("{lo}..{hi}")
        );
    }
    let total: i64 = parts.iter().map(PartPlan::messages).sum();
    println!(
        "{:<24} {:<34} {:>5} {:>22} {total:>12}",
        "total",
        "",
        parts.len(),
        ""
    );
    let detail: Vec<String> = parts
        .iter()
        .filter(|p| p.messages() > 0)
        .map(|p| format!("{}[{}] {}..{}", p.topic, p.partition, p.from, p.to))
        .collect();
    if detail.len() <= 16 {
        for d in detail {
            println!("  {d}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_every_documented_form() {
        let now = 1_764_500_000_000;
        assert_eq!(Bound::parse("earliest", now).unwrap(), Bound::Earliest);
        assert_eq!(Bound::parse("now", now).unwrap(), Bound::Now);
        assert_eq!(
            Bound::parse("1700000000000", now).unwrap(),
            Bound::Time(1_700_000_000_000)
        );
        assert_eq!(
            Bound::parse("2025-11-30T10:00:00Z", now).unwrap(),
            Bound::Time(1_764_496_800_000)
        );
        assert_eq!(
            Bound::parse("3d", now).unwrap(),
            Bound::Time(now - 3 * 86_400_000)
        );
        assert_eq!(
            Bound::parse("2h", now).unwrap(),
            Bound::Time(now - 7_200_000)
        );
        assert_eq!(
            Bound::parse("0=120, 1=340", now).unwrap(),
            Bound::Offsets([(0, 120), (1, 340)].into())
        );
        for bad in ["yesterday", "0=x", "-1=5", "0=-5", ""] {
            assert!(Bound::parse(bad, now).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn messages_never_go_negative() {
        let p = PartPlan {
            job: "j".into(),
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            changelog: None,
            from: 10,
            to: 5,
            resume_at: 10,
            follow: false,
        };
        assert_eq!(p.messages(), 0);
    }
}
