/** Identity-layer metrics, registered once in the process-wide registry. */
import { metrics, type TlsRejectReason, type TlsSide } from "../core/mod.ts";

export const tlsMetrics = {
  issued: metrics.counter(
    "weft_certificates_issued_total",
    "Workload certificates issued (first issue and rotations).",
  ),
  rotations: metrics.counter(
    "weft_certificate_rotations_total",
    "Workload certificates replaced before expiry.",
  ),
  expiry: metrics.gauge(
    "weft_certificate_expiry_seconds",
    "Expiry of the current workload certificate, Unix time in seconds.",
    ["identity"],
  ),
  rejections: metrics.counter(
    "weft_tls_rejections_total",
    "Refused mTLS handshakes or peers, by reason and by the side that refused.",
    ["reason", "side"],
  ),
};

/** Count one refusal; `side` is the side that refused ("server": we refused a client). */
export function recordTlsRejection(side: TlsSide, reason: TlsRejectReason): void {
  tlsMetrics.rejections.inc({ reason, side });
}
