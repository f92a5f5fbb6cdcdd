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

    /// <summary>The first of <paramref name="count"/> consecutive ports nothing listens on right now,
    /// for a program that takes a base port and the ones after it.</summary>
    public static int FreePorts(int count)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var first = FreePort();
            if (first + count > IPEndPoint.MaxPort)
            {
                continue;
            }

            var held = new List<TcpListener>();
            try
            {
                for (var port = first; port < first + count; port++)
                {
                    var listener = new TcpListener(IPAddress.Loopback, port);
                    listener.Start();
                    held.Add(listener);
                }

                return first;
            }
            catch (SocketException)
            {
            }
            finally
            {
                held.ForEach(l => l.Dispose());
            }
        }

        throw new InvalidOperationException($"no {count} consecutive free loopback ports in 50 attempts");
    }
}
