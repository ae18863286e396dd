namespace SharedLvm.Grpc;

/// <summary>A call's outcome: a code and a human-readable detail.</summary>
public readonly record struct Status(StatusCode Code, string Detail)
{
    public static readonly Status Ok = new(StatusCode.OK, string.Empty);

    public override string ToString() => $"{Code}: {Detail}";
}

/// <summary>
/// A gRPC error. Thrown by clients for any non-OK status and by service handlers to answer with a
/// status. Only the wire boundary (service adapters) should create these from domain exceptions.
/// </summary>
public class RpcException : Exception
{
    public RpcException(Status status)
        : base($"Status(StatusCode=\"{status.Code}\", Detail=\"{status.Detail}\")")
    {
        Status = status;
    }

    public RpcException(StatusCode code, string detail)
        : this(new Status(code, detail))
    {
    }

    public RpcException(Status status, Exception inner)
        : base($"Status(StatusCode=\"{status.Code}\", Detail=\"{status.Detail}\")", inner)
    {
        Status = status;
    }

    public RpcException()
        : this(new Status(StatusCode.Unknown, string.Empty))
    {
    }

    public RpcException(string message)
        : this(new Status(StatusCode.Unknown, message))
    {
    }

    public RpcException(string message, Exception innerException)
        : this(new Status(StatusCode.Unknown, message), innerException)
    {
    }

    public Status Status { get; }

    public StatusCode StatusCode => Status.Code;

    /// <summary>Trailers the server sent with the error (custom metadata), if any.</summary>
    public IReadOnlyDictionary<string, string> Trailers { get; init; } = new Dictionary<string, string>();
}
