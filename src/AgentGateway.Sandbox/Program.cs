using AgentGateway.Sandbox;

return await SandboxCommand.RunAsync(args, Console.Out, Console.Error);
