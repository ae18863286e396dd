namespace SharedLvm.Agent;

public enum AgentErrorKind
{
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    Unavailable,
    ResourceExhausted,
}

/// <summary>Why the agent refused a command; mapped to a gRPC status at the API edge only.</summary>
public class AgentException : Exception
{
    public AgentException()
    {
    }

    public AgentException(string message)
        : base(message)
    {
    }

    public AgentException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public AgentException(AgentErrorKind kind, string message)
        : base(message)
    {
        Kind = kind;
    }

    public AgentException(AgentErrorKind kind, string message, Exception innerException)
        : base(message, innerException)
    {
        Kind = kind;
    }

    public AgentErrorKind Kind { get; } = AgentErrorKind.FailedPrecondition;
}
