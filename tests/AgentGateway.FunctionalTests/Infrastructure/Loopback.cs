using System.Net;
using System.Net.Sockets;

namespace AgentGateway.FunctionalTests.Infrastructure;

/// <summary>Loopback ports for the real servers the tests start.</summary>
public static class Loopback
{
    /// <summary>A port nothing listens on right now (the OS's choice, released at once).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
