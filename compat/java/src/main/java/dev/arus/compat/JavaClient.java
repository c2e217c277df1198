package dev.arus.compat;
public class JavaClient { public static void main(String[] a) {} }
