using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace SharedLvm.Grpc;

public enum MethodType
{
    Unary,
    ServerStreaming,
}

/// <summary>
/// One RPC, derived from the proto's service descriptor so that the .proto file is the single
/// definition of its path and message types. Client streaming is not part of the SharedLvm
/// contract and is refused when a descriptor declares it.
/// </summary>
public sealed class GrpcMethod
{
    private GrpcMethod(MethodDescriptor descriptor)
    {
        if (descriptor.IsClientStreaming)
        {
            throw new NotSupportedException($"Client streaming method {descriptor.FullName} is not supported.");
        }

        Descriptor = descriptor;
        Path = "/" + descriptor.Service.FullName + "/" + descriptor.Name;
        Type = descriptor.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        RequestParser = descriptor.InputType.Parser;
        ResponseParser = descriptor.OutputType.Parser;
    }

    public MethodDescriptor Descriptor { get; }

    /// <summary>"/package.Service/Method".</summary>
    public string Path { get; }

    public string ServiceName => Descriptor.Service.FullName;

    public string Name => Descriptor.Name;

    public MethodType Type { get; }

    public MessageParser RequestParser { get; }

    public MessageParser ResponseParser { get; }

    public Type RequestType => Descriptor.InputType.ClrType;

    public Type ResponseType => Descriptor.OutputType.ClrType;

    public static GrpcMethod From(MethodDescriptor descriptor) => new(descriptor);

    public static IReadOnlyList<GrpcMethod> AllOf(ServiceDescriptor service) =>
        service.Methods.Select(From).ToArray();

    public override string ToString() => Path;
}
