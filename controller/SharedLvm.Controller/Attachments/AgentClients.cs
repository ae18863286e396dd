using System.Collections.Concurrent;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;

namespace SharedLvm.Controller.Attachments;

/// <summary>One channel per agent address, reused across calls.</summary>
public sealed class AgentClients : IDisposable
{
    private readonly ConcurrentDictionary<string, (GrpcChannel Channel, GrpcServiceClient Client)> _clients = new(StringComparer.Ordinal);

    public GrpcServiceClient For(string address) =>
        _clients.GetOrAdd(address, a =>
        {
            var channel = GrpcChannel.ForAddress("http://" + a);
            return (channel, new GrpcServiceClient(channel, AgentReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("Agent")));
        }).Client;

    public void Dispose()
    {
        foreach (var (channel, _) in _clients.Values)
        {
            channel.Dispose();
        }
    }
}
