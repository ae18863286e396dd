using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Health.V1;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SharedLvm.Grpc;

/// <summary>
/// grpc.health.v1.Health (grpc/grpc doc/health-checking.md). "" is the whole server; a daemon
/// sets per-service statuses as its dependencies come and go.
/// </summary>
public sealed class HealthService
{
    private readonly ConcurrentDictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Channel<HealthCheckResponse>, string> _watchers = new();

    public HealthService()
    {
        _statuses[string.Empty] = ServingStatus.Serving;
    }

    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor =>
        global::Grpc.Health.V1.HealthReflection.Descriptor.Services[0];

    public void SetStatus(string service, ServingStatus status)
    {
        _statuses[service] = status;
        foreach (var (channel, watched) in _watchers)
        {
            if (string.Equals(watched, service, StringComparison.Ordinal))
            {
                channel.Writer.TryWrite(new HealthCheckResponse { Status = status });
            }
        }
    }

    public Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context) =>
        _statuses.TryGetValue(request.Service, out var status)
            ? Task.FromResult(new HealthCheckResponse { Status = status })
            : throw new RpcException(StatusCode.NotFound, $"Unknown service '{request.Service}'.");

    public async Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context)
    {
        var channel = Channel.CreateBounded<HealthCheckResponse>(new BoundedChannelOptions(16) { FullMode = BoundedChannelFullMode.DropOldest });
        _watchers[channel] = request.Service;
        try
        {
            var current = _statuses.TryGetValue(request.Service, out var status) ? status : ServingStatus.ServiceUnknown;
            await responseStream.WriteAsync(new HealthCheckResponse { Status = current }, context.CancellationToken);
            await foreach (var update in channel.Reader.ReadAllAsync(context.CancellationToken))
            {
                await responseStream.WriteAsync(update, context.CancellationToken);
            }
        }
        finally
        {
            _watchers.TryRemove(channel, out _);
        }
    }
}
