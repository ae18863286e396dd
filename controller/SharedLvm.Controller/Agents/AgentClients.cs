using System.Collections.Concurrent;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc.Security;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

namespace SharedLvm.Controller.Agents;

/// <summary>
/// One channel per agent, reused across calls. Over TLS the agent must present the certificate of
/// the node it registered as: an address that now answers with another node's certificate (a
/// reused IP, a misrouted NAT) is refused instead of being told to activate someone else's LV.
/// </summary>
public sealed class AgentClients : IDisposable
{
    private readonly ConcurrentDictionary<(string Node, string Address), (GrpcChannel Channel, AgentRpc.AgentClient Client)> _clients = new();
    private readonly TransportSecurity _security;
    private readonly ILogger<AgentClients> _logger;

    public AgentClients(TransportSecurity security, ILogger<AgentClients> logger)
    {
        _security = security;
        _logger = logger;
    }

    public AgentRpc.AgentClient For(string node, string address) =>
        _clients.GetOrAdd((node, address), key =>
        {
            var channel = _security.Dial(key.Address, PeerRoles.Node, key.Node, why => ControllerLog.AgentRefused(_logger, key.Node, key.Address, why));
            return (channel, new AgentRpc.AgentClient(channel));
        }).Client;

    public void Dispose()
    {
        foreach (var (channel, _) in _clients.Values)
        {
            channel.Dispose();
        }
    }
}
