namespace SharedLvm.Grpc.Security;

/// <summary>TLS can't be set up from the configured files: missing, unreadable, wrong CA, or an exposed key.</summary>
public sealed class TlsConfigurationException : Exception
{
    public TlsConfigurationException(string message)
        : base(message)
    {
    }

    public TlsConfigurationException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public TlsConfigurationException()
    {
    }
}
