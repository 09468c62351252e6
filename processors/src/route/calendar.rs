//! Dates a plan promises: when a parcel leaves the warehouse, when it
//! arrives, and what the order's deadline is.
//!
//! - Ship date: the allocation's event time in the warehouse's time zone;
//!   on a weekend or at/after the warehouse's cut-off it is the next
//!   business day (Monday to Friday; public holidays are not modelled).
//! - Delivery: the ship date plus the service's transit days, counted in
//!   business days, at [`DELIVERY_HOUR`] local time. The destination's own
//!   time zone is not known from a ZIP code without another data set, so
//!   the warehouse's stands in (within the contiguous US that is at most
//!   three hours off, well inside the end-of-day margin).
//! - Deadline: the channel's deliver-by instant (e.g. Amazon's
//!   `LatestDeliveryDate`); else the merchant's promise, `promise_days`
//!   business days after the order's creation, at the end of that day.
//!
//! Time zones come from the IANA database compiled into the binary (jiff's
//! bundled copy), not the machine's: the same inputs and config give the
//! same dates on every machine (G6).

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The hour of the delivery day a parcel counts as delivered by.
pub const DELIVERY_HOUR: i8 = 20;

/// A warehouse's clock: its zone and daily cut-off.
#[derive(Debug, Clone)]
pub struct Clock {
    tz: TimeZone,
    cutoff: Time,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("unknown time zone `{0}`")]
    Zone(String),
    #[error("cut-off `{0}` is not HH:MM")]
    Cutoff(String),
    #[error("timestamp {0} ms is out of range")]
    Range(i64),
}

impl Clock {
    /// The clock of a warehouse in IANA zone `tz` with cut-off `HH:MM`.
    pub fn new(tz: &str, cutoff: &str) -> Result<Clock, CalendarError> {
        let tz = TimeZone::get(tz).map_err(|_| CalendarError::Zone(tz.to_string()))?;
        let (h, m) = cutoff
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
            .ok_or_else(|| CalendarError::Cutoff(cutoff.to_string()))?;
        let cutoff = Time::new(h, m, 0, 0).map_err(|_| CalendarError::Cutoff(cutoff.into()))?;
        Ok(Clock { tz, cutoff })
    }

    fn local(&self, ms: i64) -> Result<jiff::Zoned, CalendarError> {
        Ok(Timestamp::from_millisecond(ms)
            .map_err(|_| CalendarError::Range(ms))?
            .to_zoned(self.tz.clone()))
    }

    /// The day a parcel released at `at_ms` leaves the warehouse.
    pub fn ship_date(&self, at_ms: i64) -> Result<Date, CalendarError> {
        let now = self.local(at_ms)?;
        let day = now.date();
        if is_business_day(day) && now.time() < self.cutoff {
            Ok(day)
        } else {
            next_business_day(day)
        }
    }

    /// The day `at_ms` falls on, locally.
    pub fn date_of(&self, at_ms: i64) -> Result<Date, CalendarError> {
        Ok(self.local(at_ms)?.date())
    }

    /// `hour`:00 local time on `day`, as UTC millis.
    pub fn at(&self, day: Date, hour: i8) -> Result<i64, CalendarError> {
        let z = day
            .at(hour, 0, 0, 0)
            .to_zoned(self.tz.clone())
            .map_err(|_| CalendarError::Range(0))?;
        Ok(z.timestamp().as_millisecond())
    }

    /// The last millisecond of `day`, locally.
    pub fn end_of(&self, day: Date) -> Result<i64, CalendarError> {
        let next = day.tomorrow().map_err(|_| CalendarError::Range(0))?;
        Ok(self.at(next, 0)? - 1)
    }
}

pub fn is_business_day(d: Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn next_business_day(d: Date) -> Result<Date, CalendarError> {
    let mut d = d;
    loop {
        d = d.tomorrow().map_err(|_| CalendarError::Range(0))?;
        if is_business_day(d) {
            return Ok(d);
        }
    }
}

/// `days` business days after `d` (0 = `d` itself).
pub fn add_business_days(d: Date, days: u32) -> Result<Date, CalendarError> {
    let mut d = d;
    for _ in 0..days {
        d = next_business_day(d)?;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_cutoff_is_local_and_weekends_ship_monday() {
        let edison = Clock::new("America/New_York", "15:00").unwrap();
        // Tuesday 2026-11-24 14:59 EST = 19:59Z: ships today.
        assert_eq!(
            edison.ship_date(ms("2026-11-24T19:59:00Z")).unwrap(),
            jiff::civil::date(2026, 11, 24)
        );
        // 15:00 EST: next day.
        assert_eq!(
            edison.ship_date(ms("2026-11-24T20:00:00Z")).unwrap(),
            jiff::civil::date(2026, 11, 25)
        );
        // Friday after cut-off and Saturday both ship Monday.
        for at in ["2026-11-27T21:00:00Z", "2026-11-28T12:00:00Z"] {
            assert_eq!(
                edison.ship_date(ms(at)).unwrap(),
                jiff::civil::date(2026, 11, 30)
            );
        }
        // 01:00Z on Wednesday is still Tuesday 20:00 in New York: after
        // cut-off, ships Wednesday.
        assert_eq!(
            edison.ship_date(ms("2026-11-25T01:00:00Z")).unwrap(),
            jiff::civil::date(2026, 11, 25)
        );
    }

    #[test]
    fn business_days_skip_weekends() {
        let fri = jiff::civil::date(2026, 11, 27);
        assert_eq!(add_business_days(fri, 0).unwrap(), fri);
        assert_eq!(
            add_business_days(fri, 1).unwrap(),
            jiff::civil::date(2026, 11, 30)
        );
        assert_eq!(
            add_business_days(fri, 5).unwrap(),
            jiff::civil::date(2026, 12, 4)
        );
    }

    #[test]
    fn bad_zones_and_cutoffs_are_errors() {
        assert_eq!(
            Clock::new("Mars/Olympus", "15:00").unwrap_err(),
            CalendarError::Zone("Mars/Olympus".into())
        );
        assert!(Clock::new("UTC", "25:00").is_err());
        let utc = Clock::new("UTC", "15:00").unwrap();
        let day = jiff::civil::date(2026, 12, 1);
        assert_eq!(utc.end_of(day).unwrap(), ms("2026-12-01T23:59:59.999Z"));
        assert_eq!(utc.at(day, 20).unwrap(), ms("2026-12-01T20:00:00Z"));
    }
}
