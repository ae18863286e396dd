using System.Diagnostics;
using Grpc.Net.Client;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Benchmarks;

/// <summary>
/// Lightweight agents: each registers once and heartbeats at the controller's interval (jittered, as
/// agents started at different times do), over its own HTTP/2 connection like a real agent. Prints
/// "N registered, M heartbeats, F failed, p99 X ms".
/// </summary>
internal static class AgentSimulator
{
    public static async Task<int> RunAsync(Uri controller, int count, TimeSpan duration)
    {
        
        var channels = Enumerable.Range(0, count).Select(_ => GrpcChannel.ForAddress(controller, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler() })).ToArray();
        var heartbeats = 0;
        var failed = 0;
        var registered = 0;
        var latencies = new List<double>();
        using var stop = new CancellationTokenSource(duration);
        await Task.WhenAll(channels.Select(async (channel, i) =>
        {
            var client = new NodeRegistry.NodeRegistryClient(channel);
            var name = $"sim-{i:D4}";
            try
            {
                var reply = await client.RegisterNodeAsync(new RegisterNodeRequest { NodeName = name, Address = "127.0.0.1:9", AgentVersion = "bench" });
                Interlocked.Increment(ref registered);
                var interval = TimeSpan.FromSeconds(Math.Max(1, reply.HeartbeatIntervalSeconds));
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next((int)interval.TotalMilliseconds)), stop.Token);
                while (!stop.IsCancellationRequested)
                {
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        await client.HeartbeatAsync(new HeartbeatRequest { NodeName = name, Health = HealthState.Ok }, cancellationToken: stop.Token);
                        Interlocked.Increment(ref heartbeats);
                        lock (latencies)
                        {
                            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                        }
                    }
                    catch (global::Grpc.Core.RpcException) when (!stop.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref failed);
                    }

                    await Task.Delay(interval, stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (global::Grpc.Core.RpcException e) when (e.StatusCode == global::Grpc.Core.StatusCode.Cancelled)
            {
            }
        }));
        foreach (var channel in channels)
        {
            channel.Dispose();
        }


        var sorted = latencies.Order().ToArray();
        var p99 = sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(0.99 * sorted.Length) - 1, 0, sorted.Length - 1)];
        Console.WriteLine($"{registered} registered, {heartbeats} heartbeats, {failed} failed, heartbeat p99 {p99:0.0} ms");
        return 0;
    }
}
