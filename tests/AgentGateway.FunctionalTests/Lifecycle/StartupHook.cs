// Deliberately no namespace: the runtime looks for a startup hook as the global type StartupHook.

/// <summary>
/// Run by the runtime in a gateway process the test starts (<c>DOTNET_STARTUP_HOOKS</c>: a type of
/// this name in the global namespace): once asked (a file named like the list plus <c>.ask</c>
/// appears), it writes the names of the assemblies loaded in the process to the list's file. It
/// uses nothing but the base library, so it loads nothing of its own.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1050:Declare types in namespaces", Justification = "The runtime finds a startup hook by this name in the global namespace.")]
internal static class StartupHook
{
    public const string ListVariable = "AGW_TEST_ASSEMBLY_LIST";

    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable(ListVariable) is not { Length: > 0 } list)
        {
            return;
        }

        new Thread(() =>
        {
            while (!File.Exists(list + ".ask"))
            {
                Thread.Sleep(50);
            }

            File.WriteAllLines(list + ".tmp", AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name ?? ""));
            File.Move(list + ".tmp", list);
        }) { IsBackground = true }.Start();
    }
}
