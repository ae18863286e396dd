using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;

namespace SharedLvm.Tests.Support;

/// <summary>Calls any method of a proto service by its descriptor: for tables that try every method.</summary>
internal static class DynamicCalls
{
    /// <summary>The status the call ended with (OK, or the error's code).</summary>
    public static async Task<StatusCode> CallAsync(GrpcChannel channel, MethodDescriptor method, IMessage? request = null)
    {
        request ??= method.InputType.Parser.ParseFrom(ByteString.Empty);
        var marshaller = Marshallers.Create<IMessage>(m => m.ToByteArray(), bytes => method.OutputType.Parser.ParseFrom(bytes));
        var requestMarshaller = Marshallers.Create<IMessage>(m => m.ToByteArray(), bytes => method.InputType.Parser.ParseFrom(bytes));
        var type = method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var grpcMethod = new Method<IMessage, IMessage>(type, method.Service.FullName, method.Name, requestMarshaller, marshaller);
        try
        {
            if (type == MethodType.Unary)
            {
                await channel.CreateCallInvoker().AsyncUnaryCall(grpcMethod, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(20)), request);
            }
            else
            {
                using var call = channel.CreateCallInvoker().AsyncServerStreamingCall(grpcMethod, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(1)), request);
                await call.ResponseStream.MoveNext();
            }

            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }
}
