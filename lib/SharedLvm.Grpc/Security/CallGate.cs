using System.Threading.RateLimiting;
using Google.Protobuf;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Grpc.Security;

/// <summary>Limits on mutating calls per authenticated caller.</summary>
public sealed class MutationLimits
{
    /// <summary>Sustained mutating calls per second per caller.</summary>
    public int PerSecond { get; set; } = 20;

    /// <summary>Burst above the sustained rate (a CSI driver attaching a node's volumes after a reboot).</summary>
    public int Burst { get; set; } = 100;
}

/// <summary>
/// Authenticates each call (client certificate against the cluster CA, else a bearer token), applies
/// the access policy, rate-limits mutations per caller, and audits mutations and refusals. With
/// --insecure (no TLS) it authenticates nobody and allows everything, and says so at start.
/// </summary>
public sealed partial class CallGate : IServerCallGate, IDisposable
{
    private const string AuthorizationHeader = "authorization";
    private readonly ClusterTls? _tls;
    private readonly BearerTokens? _tokens;
    private readonly AccessPolicy _policy;
    private readonly AuditLog? _audit;
    private readonly PartitionedRateLimiter<string> _mutations;
    private readonly ILogger _logger;

    public CallGate(ClusterTls? tls, BearerTokens? tokens, AccessPolicy policy, AuditLog? audit, MutationLimits limits, ILogger logger)
    {
        _tls = tls;
        _tokens = tokens;
        _policy = policy;
        _audit = audit;
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

    public ValueTask AdmitAsync(ServerCallContext context, IMessage request)
    {
        var path = context.Method.Path;
        var identity = Authenticate(context, path);
        context.Identity = identity;
        if (_policy.Refusal(path, identity, request) is { } refusal)
        {
            throw new RpcException(StatusCode.PermissionDenied, refusal);
        }

        if (_policy.Mutates(path) && identity.Role != PeerRoles.Insecure)
        {
            using var lease = _mutations.AttemptAcquire(identity.Name);
            if (!lease.IsAcquired)
            {
                throw new RpcException(StatusCode.ResourceExhausted,
                    $"{identity.Name} is over its limit of mutating calls; retry with backoff");
            }
        }

        return ValueTask.CompletedTask;
    }

    public void Completed(ServerCallContext context, IMessage? request, Status status)
    {
        var refused = status.Code is StatusCode.Unauthenticated or StatusCode.PermissionDenied;
        if (refused)
        {
            LogRefused(_logger, context.Method.Path, context.Identity?.ToString() ?? "unauthenticated", context.Peer, status.Code, status.Detail);
        }

        if (refused || _policy.Mutates(context.Method.Path))
        {
            _audit?.Record(context.Identity, context.Peer, context.Method.Path, request, status);
        }
    }

    public void Dispose() => _mutations.Dispose();

    private PeerIdentity Authenticate(ServerCallContext context, string path)
    {
        if (_tls is null)
        {
            return PeerIdentity.Unauthenticated(context.Peer);
        }

        if (context.HttpContext.Connection.ClientCertificate is { } certificate)
        {
            var check = _tls.Verify(certificate);
            return check.Identity ?? throw new RpcException(StatusCode.Unauthenticated, "client certificate refused: " + check.Error);
        }

        var authorization = context.GetRequestHeader(AuthorizationHeader);
        if (authorization is not null && _tokens is not null
            && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return _tokens.Find(authorization["Bearer ".Length..].Trim())
                ?? throw new RpcException(StatusCode.Unauthenticated, "bearer token not recognized (revoked, or never issued by scripts/pki token)");
        }

        if (_policy.IsOpen(path))
        {
            return new PeerIdentity(context.Peer, string.Empty, "none");
        }

        throw new RpcException(StatusCode.Unauthenticated,
            "no client certificate" + (_tokens is null ? string.Empty : " or bearer token") + ": present one from the cluster CA (scripts/pki)");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "refused {Method} for {Caller} from {Peer}: {Code} {Detail}")]
    private static partial void LogRefused(ILogger logger, string method, string caller, string peer, StatusCode code, string detail);
}
