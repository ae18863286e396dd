using System.Globalization;
using System.Net;

namespace SharedLvm.Grpc;

/// <summary>Parses the daemons' "HOST:PORT" listen settings.</summary>
public static class ListenAddress
{
    public static (IPAddress Address, int Port) Parse(string listen, string setting = "--listen")
    {
        var colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new ArgumentException($"{setting} '{listen}' is not HOST:PORT.");
        }

        var host = listen[..colon].Trim('[', ']');
        var address = string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var ip) ? ip
            : throw new ArgumentException($"{setting} host '{host}' must be an IP address or localhost.");
        return (address, port);
    }
}
