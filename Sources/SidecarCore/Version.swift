public enum SidecarCoreVersion { public static let string = "0.1.0" }
