using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Threading.RateLimiting;
using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Hosting.Security;

/// <summary>Limits on mutating calls per authenticated caller.</summary>
public sealed class MutationLimits
{
    /// <summary>Sustained mutating calls per second per caller.</summary>
    public int PerSecond { get; set; } = 20;

    /// <summary>Burst above the sustained rate (a CSI driver attaching a node's volumes after a reboot).</summary>
    public int Burst { get; set; } = 100;
}

/// <summary>
/// The gate every call passes before its handler, for all four call kinds (server reflection streams
/// both ways and would walk past a gate that covers only unary and server streaming): it
/// authenticates (client certificate against the cluster CA, else a bearer token), applies the
/// access policy, rate-limits mutations per caller, caps how long a unary call may run, and on the
/// way out audits mutations and refusals, counts the call by its status, and turns an unexpected
/// exception into INTERNAL without leaking it. With --insecure (no TLS) it authenticates nobody and
/// allows everything, and the daemon says so at start.
/// </summary>
/// <remarks>
/// Authorization and rate limiting are here rather than in ASP.NET Core's middleware: the
/// node-speaks-for-itself rule needs the decoded request, and ASP.NET Core's rate limiter answers
/// HTTP 503, which gRPC clients read as UNAVAILABLE and retry, after spending a permit on a caller
/// whose certificate was never checked.
/// </remarks>
public sealed class CallGate : Interceptor, IDisposable
{
    /// <summary>Status details echoed to a client are cut to this: a request can't make a reply overflow the client's header limit.</summary>
    public const int MaxDetailLength = 1024;

    private const string AuthorizationHeader = "authorization";
    private const string IdentityKey = "sharedlvm.identity";
    private static readonly object VerifiedPeerKey = new();
    private readonly ClusterTls? _tls;
    private readonly BearerTokens? _tokens;
    private readonly AccessPolicy _policy;
    private readonly AuditLog? _audit;
    private readonly PartitionedRateLimiter<string> _mutations;
    private readonly TimeSpan _maxUnaryCall;
    private readonly ILogger _logger;

    public CallGate(ClusterTls? tls, BearerTokens? tokens, AccessPolicy policy, AuditLog? audit, MutationLimits limits, TimeSpan maxUnaryCall, ILogger logger)
    {
        _tls = tls;
        _tokens = tokens;
        _policy = policy;
        _audit = audit;
        _maxUnaryCall = maxUnaryCall;
        _logger = logger;
        _mutations = PartitionedRateLimiter.Create<string, string>(caller => RateLimitPartition.GetTokenBucketLimiter(caller, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = Math.Max(1, limits.Burst),
            TokensPerPeriod = Math.Max(1, limits.PerSecond),
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    public AccessPolicy Policy => _policy;

    /// <summary>Who made the call, once the gate admitted it.</summary>
    public static PeerIdentity? IdentityOf(ServerCallContext context) =>
        context.UserState.TryGetValue(IdentityKey, out var identity) ? identity as PeerIdentity : null;

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        GuardAsync(context, request, async () =>
        {
            // No unary call runs unbounded, whatever deadline the client asked for (or none).
            using var capped = new CappedCallContext(context, _maxUnaryCall);
            try
            {
                return await continuation(request, capped).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (capped.CapReached)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"The server ends unary calls after {_maxUnaryCall.TotalSeconds:0} s."));
            }
        });

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        GuardAsync(context, request, async () =>
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return true;
        });

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        GuardAsync<TResponse>(context, null, () => continuation(requestStream, context));

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        GuardAsync(context, null, async () =>
        {
            await continuation(requestStream, responseStream, context).ConfigureAwait(false);
            return true;
        });

    public void Dispose() => _mutations.Dispose();

    private async Task<T> GuardAsync<T>(ServerCallContext context, object? request, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        var status = Status.DefaultSuccess;
        PeerIdentity? identity = null;
        try
        {
            identity = Admit(context, request as IMessage);
            return await call().ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            status = Bounded(e.Status);
            if (status.StatusCode is not (StatusCode.Cancelled or StatusCode.DeadlineExceeded))
            {
                HostingLog.CallRefused(_logger, context.Method, Caller(context, identity), StatusNames.Of(status.StatusCode), status.Detail);
            }

            throw ReferenceEquals(status.Detail, e.Status.Detail) ? e : new RpcException(status, e.Trailers);
        }
        catch (Exception e) when (context.CancellationToken.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The client went away or its deadline passed. Cancellation is not an error.
            status = new Status(StatusCode.Cancelled, "Call canceled.");
            throw new RpcException(status);
        }
        catch (Exception e)
        {
            HostingLog.HandlerFailed(_logger, context.Method, Caller(context, identity), e);
            status = new Status(StatusCode.Internal, "Exception was thrown by handler.");
            throw new RpcException(status);
        }
        finally
        {
            // A refusal is thrown after the caller was identified: the audit still names them.
            identity ??= IdentityOf(context);
            Completed(context, identity, request as IMessage, status);
            GrpcServerMetrics.Record(context.Method, status.StatusCode, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    private PeerIdentity Admit(ServerCallContext context, IMessage? request)
    {
        var path = context.Method;
        var identity = Authenticate(context, path);
        context.UserState[IdentityKey] = identity;
        if (_policy.Refusal(path, identity, request) is { } refusal)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, refusal));
        }

        if (_policy.Mutates(path) && identity.Role != PeerRoles.Insecure)
        {
            using var lease = _mutations.AttemptAcquire(identity.Name);
            if (!lease.IsAcquired)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted, $"{identity.Name} is over its limit of mutating calls; retry with backoff"));
            }
        }

        return identity;
    }

    private void Completed(ServerCallContext context, PeerIdentity? identity, IMessage? request, Status status)
    {
        var refused = status.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied;
        if (refused)
        {
            HostingLog.Refused(_logger, context.Method, identity?.ToString() ?? "unauthenticated", context.Peer, StatusNames.Of(status.StatusCode), status.Detail);
        }

        if (refused || _policy.Mutates(context.Method))
        {
            _audit?.Record(identity, context.Peer, context.Method, request, status);
        }
    }

    private PeerIdentity Authenticate(ServerCallContext context, string path)
    {
        if (_tls is null)
        {
            return PeerIdentity.Unauthenticated(context.Peer);
        }

        var http = context.GetHttpContext();
        if (http.Connection.ClientCertificate is { } certificate)
        {
            var check = VerifiedOnce(http, certificate);
            return check.Identity ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "client certificate refused: " + check.Error));
        }

        var authorization = context.RequestHeaders.GetValue(AuthorizationHeader);
        if (authorization is not null && _tokens is not null
            && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return _tokens.Find(authorization["Bearer ".Length..].Trim())
                ?? throw new RpcException(new Status(StatusCode.Unauthenticated, "bearer token not recognized (revoked, or never issued by scripts/pki token)"));
        }

        if (_policy.IsOpen(path))
        {
            return new PeerIdentity(context.Peer, string.Empty, "none");
        }

        throw new RpcException(new Status(StatusCode.Unauthenticated,
            "no client certificate" + (_tokens is null ? string.Empty : " or bearer token") + ": present one from the cluster CA (scripts/pki)"));
    }

    /// <summary>
    /// Builds the certificate's chain once per TLS connection (the certificate can't change on it),
    /// but checks its validity period on every call: a long-lived connection must not outlive the
    /// certificate it was opened with.
    /// </summary>
    private CertificateCheck VerifiedOnce(HttpContext http, X509Certificate2 certificate)
    {
        var items = http.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items?.TryGetValue(VerifiedPeerKey, out var cached) == true && cached is CertificateCheck { Identity: not null } known)
        {
            return _tls!.CheckValidity(certificate) is { } expired ? CertificateCheck.Refused(expired) : known;
        }

        var check = _tls!.Verify(certificate);
        if (items is not null)
        {
            items[VerifiedPeerKey] = check;
        }

        return check;
    }

    private static Status Bounded(Status status) =>
        status.Detail.Length <= MaxDetailLength ? status : new Status(status.StatusCode, status.Detail[..MaxDetailLength] + "...", status.DebugException);

    private static string Caller(ServerCallContext context, PeerIdentity? identity) =>
        identity is null ? context.Peer : $"{identity.Name}@{context.Peer}";
}
