using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;
using SharedLvm.Grpc;

namespace SharedLvm.Telemetry;

/// <summary>
/// Operations by kind and result, with latency: "&lt;prefix&gt;s_total{operation,result}" and
/// "&lt;prefix&gt;_duration_seconds{operation}". The result is the gRPC status code the operation
/// ended with (<paramref name="statusOf"/> maps the daemon's exceptions as its wire boundary does),
/// so a dashboard reads the same codes the callers saw.
/// </summary>
public sealed class OperationMeter(Meter meter, string prefix, string what, Func<Exception, StatusCode> statusOf)
{
    private static readonly double[] Buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    private readonly Counter<long> _count = meter.CreateCounter<long>(prefix + "s", "{operation}", what + ", by operation and result (the gRPC status code).");

    private readonly Histogram<double> _seconds = meter.CreateHistogram(prefix + "_duration_seconds", "s", what + ": latency by operation.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });

    public async Task<T> Measure<T>(string operation, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        var result = StatusCode.OK;
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            result = e switch
            {
                RpcException rpc => rpc.StatusCode,
                OperationCanceledException => StatusCode.Cancelled,
                _ => statusOf(e),
            };
            throw;
        }
        finally
        {
            var kind = new KeyValuePair<string, object?>("operation", operation);
            _count.Add(1, kind, new KeyValuePair<string, object?>("result", StatusNames.Of(result)));
            _seconds.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, kind);
        }
    }
}
