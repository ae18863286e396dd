using System.Reflection;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;

namespace SharedLvm.Grpc;

/// <summary>
/// Binds one proto method to the service class method of the same name, once at start-up:
/// unary <c>Task&lt;TResponse&gt; Name(TRequest, ServerCallContext)</c>, server streaming
/// <c>Task Name(TRequest, IServerStreamWriter&lt;TResponse&gt;, ServerCallContext)</c>. A signature that
/// does not match the proto fails start-up instead of the first call.
/// </summary>
internal sealed class ServiceInvoker
{
    private readonly Func<object, IMessage, ServerCallContext, Task<IMessage>>? _unary;
    private readonly Func<object, IMessage, IServerStreamWriter<IMessage>, ServerCallContext, Task>? _streaming;
    private readonly Type _serviceType;

    private ServiceInvoker(
        Type serviceType,
        Func<object, IMessage, ServerCallContext, Task<IMessage>>? unary,
        Func<object, IMessage, IServerStreamWriter<IMessage>, ServerCallContext, Task>? streaming)
    {
        _serviceType = serviceType;
        _unary = unary;
        _streaming = streaming;
    }

    /// <summary>Null when the service class has no method of that name (the call answers UNIMPLEMENTED).</summary>
    public static ServiceInvoker? TryBind(Type serviceType, GrpcMethod method)
    {
        var candidates = serviceType.GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => string.Equals(m.Name, method.Name, StringComparison.Ordinal))
            .ToArray();
        if (candidates.Length == 0)
        {
            return null;
        }

        if (candidates.Length > 1)
        {
            throw new InvalidOperationException($"{serviceType.Name} has more than one method named {method.Name}.");
        }

        var info = candidates[0];
        var factory = typeof(ServiceInvoker).GetMethod(
            method.Type == MethodType.Unary ? nameof(MakeUnary) : nameof(MakeStreaming),
            BindingFlags.NonPublic | BindingFlags.Static)!;
        try
        {
            var bound = factory.MakeGenericMethod(serviceType, method.RequestType, method.ResponseType).Invoke(null, [info]);
            return method.Type == MethodType.Unary
                ? new ServiceInvoker(serviceType, (Func<object, IMessage, ServerCallContext, Task<IMessage>>)bound!, null)
                : new ServiceInvoker(serviceType, null, (Func<object, IMessage, IServerStreamWriter<IMessage>, ServerCallContext, Task>)bound!);
        }
        catch (TargetInvocationException e) when (e.InnerException is ArgumentException)
        {
            var expected = method.Type == MethodType.Unary
                ? $"Task<{method.ResponseType.Name}> {method.Name}({method.RequestType.Name}, ServerCallContext)"
                : $"Task {method.Name}({method.RequestType.Name}, IServerStreamWriter<{method.ResponseType.Name}>, ServerCallContext)";
            throw new InvalidOperationException(
                $"{serviceType.Name}.{method.Name} does not match {method.Path}; expected {expected}.", e.InnerException);
        }
    }

    public Task<IMessage> InvokeUnaryAsync(IServiceProvider services, IMessage request, ServerCallContext context) =>
        _unary!(services.GetRequiredService(_serviceType), request, context);

    public Task InvokeStreamingAsync(IServiceProvider services, IMessage request, IServerStreamWriter<IMessage> writer, ServerCallContext context) =>
        _streaming!(services.GetRequiredService(_serviceType), request, writer, context);

    private static Func<object, IMessage, ServerCallContext, Task<IMessage>> MakeUnary<TService, TRequest, TResponse>(MethodInfo info)
        where TResponse : class, IMessage
    {
        var typed = info.CreateDelegate<Func<TService, TRequest, ServerCallContext, Task<TResponse>>>();
        return async (service, request, context) => await typed((TService)service, (TRequest)request, context).ConfigureAwait(false);
    }

    private static Func<object, IMessage, IServerStreamWriter<IMessage>, ServerCallContext, Task> MakeStreaming<TService, TRequest, TResponse>(MethodInfo info)
        where TResponse : class, IMessage
    {
        var typed = info.CreateDelegate<Func<TService, TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task>>();
        return (service, request, writer, context) => typed((TService)service, (TRequest)request, writer, context);
    }
}
