/** xDS metrics: Istio's names where they exist, weft's own under weft_. */
import { metrics } from "../core/mod.ts";

export const xdsMessages = metrics.counter(
  "istio_xds_message_total",
  "xDS responses received, by type URL",
  ["url"],
);
export const xdsTerminations = metrics.counter(
  "istio_xds_connection_terminations_total",
  "xDS streams ended, by reason (gRPC status name or 'error')",
  ["reason"],
);
export const xdsNacks = metrics.counter(
  "weft_xds_nacks_total",
  "xDS responses NACKed, by type URL",
  ["url"],
);
export const xdsServerNacks = metrics.counter(
  "weft_xds_server_nacks_received_total",
  "NACKs the embedded control plane received, by type URL",
  ["url"],
);
export const xdsPushes = metrics.counter(
  "weft_xds_server_pushes_total",
  "Responses sent by the embedded control plane, by type URL",
  ["url"],
);
