using System.Collections.Concurrent;
using Grpc.Core;
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

    /// <summary>
    /// What an agent's failed answer means to the controller's caller: the agent refusing the request
    /// (FAILED_PRECONDITION, INVALID_ARGUMENT, NOT_FOUND) is a failed precondition; anything else (no
    /// connection, a timeout, a call cut on the agent's side) is UNAVAILABLE: retry. Never passed on as
    /// it came: a CANCELLED from a stale channel to the agent reads as if the caller had cancelled (the
    /// lab saw one on a live health call right after a partition healed).
    /// </summary>
    public static ControllerErrorKind KindOf(RpcException e) =>
        e.StatusCode is StatusCode.FailedPrecondition or StatusCode.InvalidArgument or StatusCode.NotFound
            ? ControllerErrorKind.FailedPrecondition
            : ControllerErrorKind.Unavailable;

    public void Dispose()
    {
        foreach (var (channel, _) in _clients.Values)
        {
            channel.Dispose();
        }
    }
}
