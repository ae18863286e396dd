using Microsoft.Extensions.Logging;

namespace SharedLvm.Hosting;

/// <summary>Every log message of the shared daemon code (gRPC server, call gate, tokens, audit): stable event ids 1xxx, each used once.</summary>
internal static partial class HostingLog
{
    [LoggerMessage(1002, LogLevel.Error, "gRPC call {Method} from {Caller}: the handler threw; answering INTERNAL")]
    public static partial void HandlerFailed(ILogger logger, string method, string caller, Exception exception);

    [LoggerMessage(1003, LogLevel.Information, "gRPC call {Method} from {Caller} ended {StatusCode}: {Detail}")]
    public static partial void CallRefused(ILogger logger, string method, string caller, string statusCode, string detail);

    [LoggerMessage(1006, LogLevel.Warning, "refused {Method} for {Caller} from {Peer}: {Code} {Detail}")]
    public static partial void Refused(ILogger logger, string method, string caller, string peer, string code, string detail);

    [LoggerMessage(1007, LogLevel.Warning, "{Daemon}'s TLS certificate expires on {NotAfter:u}: reissue it with scripts/pki before peers start refusing it")]
    public static partial void ExpiresSoon(ILogger logger, string daemon, DateTimeOffset notAfter);

    [LoggerMessage(1008, LogLevel.Warning, "INSECURE: {Daemon} serves plaintext gRPC on {Listen} and authenticates nobody; anyone who can reach it can {Exposure}. --insecure is for local development only: scripts/pki makes the certificates for mutual TLS.")]
    public static partial void Insecure(ILogger logger, string daemon, string listen, string exposure);

    [LoggerMessage(1009, LogLevel.Information, "{Daemon} serves gRPC over mutual TLS on {Listen} as {Identity}; peers are verified against {Authority}")]
    public static partial void Tls(ILogger logger, string daemon, string listen, string identity, string authority);

    [LoggerMessage(1010, LogLevel.Information, "gRPC call {Method}: the request is not a valid message ({Error}); answering INTERNAL")]
    public static partial void BadRequestMessage(ILogger logger, string method, string error);

    [LoggerMessage(1012, LogLevel.Information, "bearer tokens: {Count} loaded from {Path}")]
    public static partial void TokensLoaded(ILogger logger, string path, int count);

    [LoggerMessage(1013, LogLevel.Error, "bearer tokens: {Path} line {Line} is not 'NAME reader|operator|admin sha256:HEX'; keeping the tokens loaded before")]
    public static partial void TokensBadLine(ILogger logger, string path, int line);

    [LoggerMessage(1014, LogLevel.Error, "audit: writing {Path} failed for {Method}")]
    public static partial void AuditWriteFailed(ILogger logger, string path, string method, Exception e);
}
