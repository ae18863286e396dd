namespace SharedLvm.Controller;

/// <summary>Why a controller operation was refused; mapped to a gRPC status at the API edge only.</summary>
public enum ControllerErrorKind
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Aborted,
    ResourceExhausted,
    Unavailable,
    Internal,
}

public class ControllerException : Exception
{
    public ControllerException()
    {
    }

    public ControllerException(string message)
        : base(message)
    {
    }

    public ControllerException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ControllerException(ControllerErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    public ControllerErrorKind Kind { get; } = ControllerErrorKind.Internal;

    public static ControllerException Invalid(string message) => new(ControllerErrorKind.InvalidArgument, message);

    public static ControllerException NotFound(string message) => new(ControllerErrorKind.NotFound, message);
}
