using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace SharedLvm.Grpc;

/// <summary>
/// A client of one proto service. Calls name the method by its request type (each SharedLvm RPC has
/// its own request message) or explicitly by name; paths and parsers come from the descriptor.
/// </summary>
public class GrpcServiceClient
{
    private readonly Dictionary<string, GrpcMethod> _byName;
    private readonly Dictionary<Type, GrpcMethod> _byRequestType;

    public GrpcServiceClient(GrpcChannel channel, ServiceDescriptor service)
    {
        Channel = channel;
        Service = service;
        var methods = GrpcMethod.AllOf(service);
        _byName = methods.ToDictionary(m => m.Name, StringComparer.Ordinal);
        // Request types used by more than one method (grpc.health.v1 Check/Watch) need the name.
        _byRequestType = methods.GroupBy(m => m.RequestType).Where(g => g.Count() == 1).ToDictionary(g => g.Key, g => g.Single());
    }

    public GrpcChannel Channel { get; }

    public ServiceDescriptor Service { get; }

    public Task<TResponse> CallAsync<TResponse>(IMessage request, CallOptions? options = null)
        where TResponse : IMessage =>
        Channel.UnaryAsync<TResponse>(Resolve<TResponse>(request.GetType(), null, MethodType.Unary), request, options);

    public Task<TResponse> CallAsync<TResponse>(string methodName, IMessage request, CallOptions? options = null)
        where TResponse : IMessage =>
        Channel.UnaryAsync<TResponse>(Resolve<TResponse>(request.GetType(), methodName, MethodType.Unary), request, options);

    public IAsyncEnumerable<TResponse> StreamAsync<TResponse>(IMessage request, CallOptions? options = null, string? methodName = null)
        where TResponse : IMessage =>
        Channel.ServerStreamingAsync<TResponse>(Resolve<TResponse>(request.GetType(), methodName, MethodType.ServerStreaming), request, options);

    private GrpcMethod Resolve<TResponse>(Type requestType, string? methodName, MethodType type)
    {
        GrpcMethod? method;
        if (methodName is null)
        {
            if (!_byRequestType.TryGetValue(requestType, out method))
            {
                throw new ArgumentException($"{Service.FullName} has no single method taking {requestType.Name}; name the method.");
            }
        }
        else if (!_byName.TryGetValue(methodName, out method))
        {
            throw new ArgumentException($"{Service.FullName} has no method {methodName}.");
        }

        if (method.RequestType != requestType || method.ResponseType != typeof(TResponse) || method.Type != type)
        {
            throw new ArgumentException(
                $"{method.Path} is {method.Type} {method.RequestType.Name} -> {method.ResponseType.Name}, not {type} {requestType.Name} -> {typeof(TResponse).Name}.");
        }

        return method;
    }
}
