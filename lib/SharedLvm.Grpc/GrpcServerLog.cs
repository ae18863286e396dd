using Microsoft.Extensions.Logging;

namespace SharedLvm.Grpc;

/// <summary>Log messages of the gRPC server; event ids are stable (1xxx).</summary>
internal static partial class GrpcServerLog
{
    [LoggerMessage(1001, LogLevel.Debug, "gRPC call {Method} from {Peer} finished with {StatusCode} in {ElapsedMs} ms")]
    public static partial void CallFinished(ILogger logger, string method, string peer, StatusCode statusCode, double elapsedMs);

    [LoggerMessage(1002, LogLevel.Error, "gRPC call {Method} from {Peer}: the handler threw; answering INTERNAL")]
    public static partial void HandlerFailed(ILogger logger, string method, string peer, Exception exception);

    [LoggerMessage(1003, LogLevel.Information, "gRPC call {Method} from {Peer} refused: {StatusCode} {Detail}")]
    public static partial void CallRefused(ILogger logger, string method, string peer, StatusCode statusCode, string detail);

    [LoggerMessage(1004, LogLevel.Debug, "gRPC call to unknown method {Path} from {Peer}")]
    public static partial void UnknownMethod(ILogger logger, string path, string peer);

    [LoggerMessage(1005, LogLevel.Information, "gRPC service {Service}: {Count} methods not implemented yet, they answer UNIMPLEMENTED: {Methods}")]
    public static partial void MethodsNotImplemented(ILogger logger, string service, int count, string methods);
}
