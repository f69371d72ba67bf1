//! faultline-sim's integration tests, in one binary: the simulation against
//! tower's own middleware (`middleware`) and the demo shop's hardened middleware
//! (`demo`).

mod demo;
mod middleware;
