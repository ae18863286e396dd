using Google.Protobuf;
using Google.Protobuf.Reflection;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Hosting.Security;

/// <summary>
/// Who may call which method, by full path. A method with no rule is refused: a new RPC is closed
/// until someone decides who may call it (a test checks every method of each service has a rule).
/// </summary>
public sealed class AccessPolicy
{
    private readonly Dictionary<string, Rule> _rules = new(StringComparer.Ordinal);

    /// <summary>Anyone, even unauthenticated (health checks: they reveal nothing and change nothing).</summary>
    public AccessPolicy Open(string path) => Add(path, new Rule([], null, Mutates: false, Open: true));

    /// <summary>Callers holding one of <paramref name="roles"/>.</summary>
    public AccessPolicy Allow(string path, bool mutates, params string[] roles) => Add(path, new Rule(roles, null, mutates, Open: false));

    /// <summary>Nodes, each only speaking for itself: the request's node name must be the certificate's.</summary>
    public AccessPolicy AllowNodeAsItself(string path, Func<IMessage, string> nodeName) =>
        Add(path, new Rule([PeerRoles.Node], nodeName, Mutates: true, Open: false));

    public bool Covers(string path) => _rules.ContainsKey(path);

    public bool IsOpen(string path) => _rules.TryGetValue(path, out var rule) && rule.Open;

    /// <summary>Mutating calls are rate limited and audited.</summary>
    public bool Mutates(string path) => !_rules.TryGetValue(path, out var rule) || rule.Mutates;

    /// <summary>Null when allowed; otherwise why not (the PERMISSION_DENIED detail).</summary>
    public string? Refusal(string path, PeerIdentity identity, IMessage? request)
    {
        if (!_rules.TryGetValue(path, out var rule))
        {
            return $"{path} has no access rule; refused for everyone";
        }

        if (rule.Open || identity.Role == PeerRoles.Insecure)
        {
            return null;
        }

        if (!rule.Roles.Contains(identity.Role, StringComparer.Ordinal))
        {
            return $"{identity.Name} has role {identity.Role}; {path} needs {string.Join(" or ", rule.Roles)}";
        }

        if (rule.NodeName is not null)
        {
            var node = request is null ? "?" : rule.NodeName(request);
            if (!string.Equals(node, identity.Name, StringComparison.Ordinal))
            {
                return $"node {identity.Name} may only speak for itself, not for node '{node}'";
            }
        }

        return null;
    }

    private AccessPolicy Add(string path, Rule rule)
    {
        _rules.Add(path, rule);
        return this;
    }

    private sealed record Rule(string[] Roles, Func<IMessage, string>? NodeName, bool Mutates, bool Open);
}

/// <summary>Method paths as the policy keys them.</summary>
public static class MethodPaths
{
    public static string Of(ServiceDescriptor service, string method) =>
        service.FindMethodByName(method) is { } found
            ? $"/{service.FullName}/{found.Name}"
            : throw new ArgumentException($"{service.FullName} has no method {method}", nameof(method));

    /// <summary>Every method of <paramref name="service"/>.</summary>
    public static IEnumerable<string> AllOf(ServiceDescriptor service) => service.Methods.Select(m => $"/{service.FullName}/{m.Name}");

    /// <summary>grpc.health.v1 Check and Watch: open to anyone (a probe has no certificate; health reveals nothing).</summary>
    public static AccessPolicy OpenHealth(this AccessPolicy policy)
    {
        foreach (var path in AllOf(global::Grpc.Health.V1.Health.Descriptor))
        {
            policy.Open(path);
        }

        return policy;
    }

    /// <summary>Server reflection (v1 and v1alpha), so grpcurl-style tools can list and call the API: for <paramref name="roles"/>.</summary>
    public static AccessPolicy AllowReflection(this AccessPolicy policy, params string[] roles)
    {
        foreach (var path in AllOf(global::Grpc.Reflection.V1Alpha.ServerReflection.Descriptor).Concat(AllOf(global::Grpc.Reflection.V1.ServerReflection.Descriptor)))
        {
            policy.Allow(path, mutates: false, roles);
        }

        return policy;
    }
}
