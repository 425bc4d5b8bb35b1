//! The runtime stores: records with their turn claims, durable jobs, health events.

mod health;
mod jobs;
mod records;
