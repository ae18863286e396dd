using System.Net.Security;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Grpc;

/// <summary>
/// Every SharedLvm client channel: 4 MiB messages both ways, a bounded connect, HTTP/2 keep-alive
/// pings so a dead peer (a powered-off node, a controller host that froze) is noticed in seconds
/// rather than at the next TCP timeout, and retries for the calls the contract marks as safe to
/// repeat (idempotency_level in the .proto), on UNAVAILABLE only.
/// </summary>
public static class Channels
{
    public const int MaxMessageSize = 4 * 1024 * 1024;

    /// <summary>A ping after this much silence on a connection...</summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(10);

    /// <summary>...and the connection is dropped when the ping is not answered within this.</summary>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(10);

    public static GrpcChannel Open(Uri address, SslClientAuthenticationOptions? ssl, HttpMessageHandler? handler = null) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler ?? new UnreachableAsUnavailable(new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                // An unreachable node fails fast as UNAVAILABLE instead of hanging the attach.
                ConnectTimeout = TimeSpan.FromSeconds(5),
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
                KeepAlivePingDelay = KeepAlivePingDelay,
                KeepAlivePingTimeout = KeepAlivePingTimeout,
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
                SslOptions = ssl ?? new SslClientAuthenticationOptions(),
            }),
            MaxReceiveMessageSize = MaxMessageSize,
            MaxSendMessageSize = MaxMessageSize,
            ServiceConfig = RetryConfig.Value,
        });

    /// <summary>
    /// Retries for the methods whose proto says they have no side effects or are idempotent (reads,
    /// heartbeats): a retry can't do twice what a client asked once. Writes are retried by their
    /// callers, who know that an UNAVAILABLE write may have happened.
    /// </summary>
    private static readonly Lazy<ServiceConfig> RetryConfig = new(() =>
    {
        var policy = new RetryPolicy
        {
            MaxAttempts = 4,
            InitialBackoff = TimeSpan.FromMilliseconds(200),
            MaxBackoff = TimeSpan.FromSeconds(2),
            BackoffMultiplier = 2,
            RetryableStatusCodes = { StatusCode.Unavailable },
        };
        var config = new MethodConfig { RetryPolicy = policy };
        foreach (var method in RetryableMethods())
        {
            config.Names.Add(new MethodName { Service = method.Service.FullName, Method = method.Name });
        }

        return new ServiceConfig { MethodConfigs = { config } };
    });

    /// <summary>
    /// A server whose certificate we refuse, or whose connection died under a call, is a server we
    /// can't reach: UNAVAILABLE, as for a dead port, and slvm's exit code says so (14).
    /// Grpc.Net.Client would report INTERNAL for both.
    /// </summary>
    private sealed class UnreachableAsUnavailable(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (e.InnerException is System.Security.Authentication.AuthenticationException tls)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, $"TLS with {request.RequestUri?.Authority} failed: {tls.Message}", e));
            }
            catch (HttpRequestException e) when (e.InnerException is HttpProtocolException { ErrorCode: 0x1 } lost)
            {
                // HTTP/2 PROTOCOL_ERROR on the connection: above all, a keep-alive ping that went
                // unanswered (a powered-off or frozen peer). The connection is gone, which gRPC calls
                // UNAVAILABLE; Grpc.Net.Client would say INTERNAL.
                throw new RpcException(new Status(StatusCode.Unavailable, $"Connection to {request.RequestUri?.Authority} lost: {lost.Message}", e));
            }
        }
    }

    /// <summary>Methods the contract marks NO_SIDE_EFFECTS or IDEMPOTENT.</summary>
    public static IEnumerable<MethodDescriptor> RetryableMethods() =>
        new[] { ControllerReflection.Descriptor, AgentReflection.Descriptor }
            .SelectMany(file => file.Services)
            .SelectMany(service => service.Methods)
            .Where(m => !m.IsServerStreaming && !m.IsClientStreaming
                && m.GetOptions()?.IdempotencyLevel is MethodOptions.Types.IdempotencyLevel.NoSideEffects or MethodOptions.Types.IdempotencyLevel.Idempotent);
}
