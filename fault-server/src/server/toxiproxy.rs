//! The Toxiproxy config file of the Rust API (feature `control`).

use crate::control::toxiproxy;
use crate::{ControlError, DependencyView, FaultServer};

impl FaultServer {
    /// Creates the proxies of a Toxiproxy config file, as
    /// `toxiproxy-server -config FILE` does: a JSON array of
    /// `{"name", "listen", "upstream", "enabled"}` (and `"protocol": "http"`
    /// for an HTTP proxy; `"toxics"` to start with). Every proxy is checked
    /// before any is created; one already in force with the same listen
    /// address and upstream is kept, one that differs is replaced. As from
    /// Rust, a listen address may be beyond loopback.
    ///
    /// # Errors
    /// The first proxy that is invalid or cannot listen, as
    /// [`ControlError::Invalid`] (`field` = `proxies`); proxies before it in
    /// the file stay created.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rt = tokio::runtime::Runtime::new()?; let _g = rt.enter();
    /// let server = fault_server::FaultServer::builder().start()?;
    /// let proxies = server.populate_toxiproxy(
    ///     br#"[{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379"}]"#,
    /// )?;
    /// assert_eq!(proxies[0].tcp.as_deref(), Some("127.0.0.1:6379"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn populate_toxiproxy(&self, config: &[u8]) -> Result<Vec<DependencyView>, ControlError> {
        let _on = self.runtime.enter();
        let proxies = toxiproxy::populate_from(self.registry(), true, config)
            .map_err(|(problem, _)| ControlError::invalid("proxies", problem.message))?;
        proxies
            .iter()
            .map(|proxy| self.registry().view(&proxy.name))
            .collect()
    }
}
