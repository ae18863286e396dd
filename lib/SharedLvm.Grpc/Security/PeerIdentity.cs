namespace SharedLvm.Grpc.Security;

/// <summary>Roles a peer can hold. Certificates carry one in their OU; bearer tokens in the tokens file.</summary>
public static class PeerRoles
{
    /// <summary>The single writer; the only identity an agent obeys.</summary>
    public const string Controller = "controller";

    /// <summary>A node's agent: may register and heartbeat, only as the node its certificate names.</summary>
    public const string Node = "node";

    /// <summary>get, list, watch, node health.</summary>
    public const string Reader = "reader";

    /// <summary>reader + create, extend, snapshot, clone, labels, attach, detach.</summary>
    public const string Operator = "operator";

    /// <summary>operator + delete, pools, fence, drain, resume.</summary>
    public const string Admin = "admin";

    /// <summary>--insecure: nobody was authenticated, everything is allowed (local development only).</summary>
    public const string Insecure = "insecure";

    public static readonly IReadOnlySet<string> Known = new HashSet<string>(StringComparer.Ordinal)
    {
        Controller, Node, Reader, Operator, Admin,
    };
}

/// <summary>Who is calling: a verified name and role, and how it was proven (certificate, token, none).</summary>
public sealed record PeerIdentity(string Name, string Role, string Via)
{
    public static PeerIdentity Unauthenticated(string peer) => new(peer, PeerRoles.Insecure, "plaintext");

    public override string ToString() => $"{Name} ({Role} by {Via})";
}
