namespace SharedLvm.Grpc;

public sealed class GrpcServerOptions
{
    /// <summary>Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>Largest response message sent; a handler returning a larger one gets RESOURCE_EXHAUSTED.</summary>
    public int MaxSendMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>
    /// Upper bound on any call's deadline, also applied to calls without grpc-timeout, so no
    /// server-side wait is unbounded. Streaming calls (watches) are exempt.
    /// </summary>
    public TimeSpan MaxUnaryCallDuration { get; set; } = TimeSpan.FromMinutes(10);
}
