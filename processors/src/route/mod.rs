//! Routing (docs/routing.md): each allocated parcel gets a box, a zone, a
//! carrier and a service.
//!
//! - [`packing`]: the smallest configured box the units fit in.
//! - [`rates`]: zones from ZIP3 centroids, dimensional weight, rate cards,
//!   carrier and service exclusions.
//! - [`calendar`]: ship date after the warehouse's cut-off, business-day
//!   transit, the order's deadline.
//! - [`plan`]: one shipment's plan: the cheapest service that meets the
//!   SLA, every alternative with why it lost. A pure function.
//! - [`order`]: the per-order join of order versions and allocations, and
//!   shipment ids that a replay never duplicates.
//! - [`jobs`]: the two forwarders and the keyed route job on the stream
//!   runtime.

pub mod calendar;
pub mod jobs;
pub mod order;
pub mod packing;
pub mod plan;
pub mod rates;
pub mod sample;
