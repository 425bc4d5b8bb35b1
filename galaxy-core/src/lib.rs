#![doc = include_str!("../README.md")]

pub mod domain;
pub mod ports;
pub mod service;
pub mod worker;
