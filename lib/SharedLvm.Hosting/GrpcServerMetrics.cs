using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Grpc.Core;
using SharedLvm.Grpc;

namespace SharedLvm.Hosting;

/// <summary>
/// API requests by method and gRPC status code, with latency. ASP.NET Core's own HTTP metrics see
/// 200 for every gRPC outcome, so the call gate records these. Labels are bounded: method paths come
/// from the proto, codes from the gRPC status list; no volume ids.
/// </summary>
public static class GrpcServerMetrics
{
    public const string MeterName = "SharedLvm.Grpc";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Calls = Meter.CreateCounter<long>(
        "sharedlvm_grpc_server_calls", "{call}", "gRPC calls served, by method and status code.");

    private static readonly Histogram<double> Duration = Meter.CreateHistogram(
        "sharedlvm_grpc_server_call_duration_seconds", "s", "gRPC call latency, by method.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120] });

    private static readonly ConcurrentDictionary<string, DateTimeOffset> Certificates = new(StringComparer.Ordinal);

    private static readonly ObservableGauge<long> CertificateExpiry = Meter.CreateObservableGauge(
        "sharedlvm_tls_certificate_expiry_timestamp_seconds",
        () => Certificates.Select(c => new Measurement<long>(c.Value.ToUnixTimeSeconds(), new KeyValuePair<string, object?>("subject", c.Key))),
        "s", "When this daemon's own TLS certificate expires (Unix time).");

    internal static void Record(string method, StatusCode code, double seconds)
    {
        Calls.Add(1, new KeyValuePair<string, object?>("method", method), new KeyValuePair<string, object?>("code", StatusNames.Of(code)));
        Duration.Record(seconds, new KeyValuePair<string, object?>("method", method));
    }

    /// <summary>
    /// Expiry of each certificate this process serves with: an expired node certificate silently
    /// becomes an agent that can't register, so the alert must fire weeks before.
    /// </summary>
    public static void ObserveCertificate(string subject, DateTimeOffset notAfter) => Certificates[subject] = notAfter;
}
