using System.Reflection;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Hosting;

/// <summary>
/// Binds generated services as grpc-dotnet's own binder does (the static BindService of the service's
/// base class, then each method to its override), but with request deserializers that answer
/// INTERNAL, logged at Information, for bytes that are not the request message. grpc-dotnet's
/// binder lets the parser's exception escape the handler: UNKNOWN, and an Error-level stack trace
/// per call, so anyone who can open a connection could fill the journal.
/// </summary>
internal sealed class SafeParsingMethodProvider<TService>(ILoggerFactory loggers) : IServiceMethodProvider<TService>
    where TService : class
{
    private readonly ILogger _logger = loggers.CreateLogger("SharedLvm.Grpc.Server");

    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        var (bind, serviceBase) = FindBindMethod(typeof(TService));
        if (bind is null)
        {
            return;
        }

        bind.Invoke(null, [new Binder(context, serviceBase!, _logger), null]);
    }

    private static (MethodInfo? Bind, Type? ServiceBase) FindBindMethod(Type service)
    {
        for (var type = service; type is not null; type = type.BaseType)
        {
            if (type.GetCustomAttribute<BindServiceMethodAttribute>() is { } attribute)
            {
                var bind = attribute.BindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                    .FirstOrDefault(m => m.Name == attribute.BindMethodName && m.GetParameters() is [{ ParameterType: var first }, _] && first == typeof(ServiceBinderBase));
                return (bind, bind?.GetParameters()[1].ParameterType);
            }
        }

        return (null, null);
    }

    private sealed class Binder(ServiceMethodProviderContext<TService> context, Type serviceBase, ILogger logger) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Safe(method), Metadata(), Invoker<UnaryServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(TRequest), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Safe(method), Metadata(), Invoker<ServerStreamingServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Safe(method), Metadata(), Invoker<ClientStreamingServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Safe(method), Metadata(), Invoker<DuplexStreamingServerMethod<TService, TRequest, TResponse>>(method.Name, typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)));

        private Method<TRequest, TResponse> Safe<TRequest, TResponse>(Method<TRequest, TResponse> method)
            where TRequest : class
            where TResponse : class
        {
            var inner = method.RequestMarshaller;
            var marshaller = new Marshaller<TRequest>(inner.ContextualSerializer, deserialization =>
            {
                try
                {
                    return inner.ContextualDeserializer(deserialization);
                }
                catch (InvalidProtocolBufferException e)
                {
                    HostingLog.BadRequestMessage(logger, method.FullName, e.Message);
                    throw new RpcException(new Status(StatusCode.Internal, $"The request is not a valid {typeof(TRequest).Name} message."));
                }
            });
            return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, marshaller, method.ResponseMarshaller);
        }

        /// <summary>The service's override of the base method (not a method that merely hides it).</summary>
        private TDelegate Invoker<TDelegate>(string name, params Type[] parameters)
            where TDelegate : Delegate
        {
            for (var type = typeof(TService); type is not null; type = type.BaseType)
            {
                var candidate = type.GetMethod(name, BindingFlags.Public | BindingFlags.Instance, null, parameters, null);
                if (candidate is null)
                {
                    break;
                }

                if (candidate.IsVirtual && candidate.GetBaseDefinition().DeclaringType == serviceBase)
                {
                    return (TDelegate)Delegate.CreateDelegate(typeof(TDelegate), candidate);
                }
            }

            throw new InvalidOperationException($"{typeof(TService).Name} has no override of {serviceBase.Name}.{name}.");
        }

        private static List<object> Metadata() =>
            [.. typeof(TService).GetCustomAttributes(inherit: true), new HttpMethodMetadata(["POST"])];
    }
}
