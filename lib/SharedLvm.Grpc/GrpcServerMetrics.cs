using System.Diagnostics.Metrics;

namespace SharedLvm.Grpc;

/// <summary>
/// API requests by method and status code, with latency. Labels are bounded: method paths come
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

    internal static void Record(string method, StatusCode code, double seconds)
    {
        var codeName = CodeName(code);
        Calls.Add(1, new KeyValuePair<string, object?>("method", method), new KeyValuePair<string, object?>("code", codeName));
        Duration.Record(seconds, new KeyValuePair<string, object?>("method", method));
    }

    /// <summary>The canonical upper-snake name ("NOT_FOUND") that gRPC tooling uses.</summary>
    public static string CodeName(StatusCode code) =>
        string.Concat(code.ToString().Select((c, i) => i > 0 && char.IsUpper(c) && code != StatusCode.OK ? "_" + c : c.ToString())).ToUpperInvariant();
}
